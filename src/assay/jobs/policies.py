"""Compute-to-data access policies and the consumability check made before a job starts.

A published bundle name has one policy (every version of the name follows it):

- ``access="download"``: the consumer may read the files; any algorithm may run on them.
- ``access="compute"``: the files stay inside jobs. Only trusted algorithms run on them: a
  registered service or published algorithm bundle listed in ``trusted_algorithms`` with its
  code hash pinned at publish time, or any algorithm whose publisher is in
  ``trusted_publishers``. A raw algorithm (code sent with the job) runs only with
  ``allow_raw_algorithm``. The job's environment must isolate it (``isolation: sandbox``) and
  may reach the network only with ``allow_network``.

**One rule for every list** (``trusted_algorithms``, ``trusted_publishers``,
``allow_consumers``): an empty list allows nothing and ``"*"`` allows everything. (Ocean's two
codebases disagree: its Python provider lets any algorithm run when both trust lists are empty,
ocean.js and ocean-node deny. We deny: publishing for compute is a promise that raw data stays
with trusted code.) ``deny_consumers`` is checked first, so an explicit deny always wins. A
bundle with no policy is open (``download``): in a local catalog, the owner's own data.

The check is pure (``check_consumable``); the catalog part is ``publish``, ``get_policy``,
``list_policies`` and ``unpublish``. Codes follow Ocean's ``ConsumableCodes`` numbers for the
dataset-level answers (0-4) and its provider's algorithm validation messages for the rest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

from assay.bundles.operations import require_context
from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import policy_queries, queries
from assay.core.errors import BundleNotFound, InvalidInput, NotConsumable
from assay.core.names import check_bundle_name

ALL = "*"
ACCESS_KINDS = ("download", "compute")
AlgorithmKind = Literal["service", "bundle", "raw"]


class Consumable(IntEnum):
    """Why a dataset can or cannot be used by this consumer with this algorithm."""

    OK = 0
    DISABLED = 1  # Ocean ASSET_DISABLED
    CONNECTIVITY_FAIL = 2  # Ocean: the files cannot be reached (here: not localized)
    NOT_IN_ALLOW_LIST = 3  # Ocean CREDENTIAL_NOT_IN_ALLOW_LIST
    IN_DENY_LIST = 4  # Ocean CREDENTIAL_IN_DENY_LIST
    # 5 is Ocean's ASSET_UNLISTED; a local catalog has no market listing, so it is not used.
    RAW_ALGORITHM_NOT_ALLOWED = 10  # provider "no_raw_algo_allowed"
    ALGORITHM_NOT_TRUSTED = 11  # provider "not_trusted_algo"
    PUBLISHER_NOT_TRUSTED = 12  # provider "not_trusted_algo_publisher"
    CODE_HASH_MISMATCH = 13  # provider "algorithm_*_checksum_mismatch"
    NETWORK_NOT_ALLOWED = 14  # Ocean's allowNetworkAccess=false vs a networked environment
    ISOLATION_REQUIRED = 15  # compute access in an environment without a sandbox


@dataclass(frozen=True)
class TrustedAlgorithm:
    """An algorithm a dataset trusts: its id (an SRUID, ``assay://context/name`` for an
    algorithm bundle, or ``*``) and the code hash pinned when it was trusted."""

    id: str
    code_hash: str | None = None

    def to_primitive(self) -> dict[str, Any]:
        return {"id": self.id, "code_hash": self.code_hash}

    @classmethod
    def from_primitive(cls, value: Any) -> TrustedAlgorithm:
        if isinstance(value, str):
            return cls(value)
        return cls(str(value["id"]), value.get("code_hash"))


@dataclass(frozen=True)
class AlgorithmRef:
    """What the check needs to know about the algorithm a job would run."""

    kind: AlgorithmKind
    id: str  # SRUID, assay://context/name, or "raw"
    code_hash: str
    publisher: str = ""


@dataclass(frozen=True)
class AccessPolicy:
    context: str
    name: str
    access: str = "download"
    disabled: bool = False
    allow_raw_algorithm: bool = False
    allow_network: bool = False
    trusted_algorithms: tuple[TrustedAlgorithm, ...] = ()
    trusted_publishers: tuple[str, ...] = ()
    allow_consumers: tuple[str, ...] = (ALL,)
    deny_consumers: tuple[str, ...] = ()
    publisher: str = ""
    created: float = 0.0
    updated: float = 0.0
    published: bool = field(default=True)  # False: no row, the open default

    def to_primitive(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "name": self.name,
            "access": self.access,
            "disabled": self.disabled,
            "allow_raw_algorithm": self.allow_raw_algorithm,
            "allow_network": self.allow_network,
            "trusted_algorithms": [t.to_primitive() for t in self.trusted_algorithms],
            "trusted_publishers": list(self.trusted_publishers),
            "allow_consumers": list(self.allow_consumers),
            "deny_consumers": list(self.deny_consumers),
            "publisher": self.publisher,
            "created": self.created,
            "updated": self.updated,
            "published": self.published,
        }


@dataclass(frozen=True)
class Verdict:
    """The answer of the check: a code, the rule that decided, and a message naming both."""

    code: Consumable
    rule: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code is Consumable.OK

    def raise_unless_ok(self) -> None:
        if not self.ok:
            raise NotConsumable(
                self.message,
                details={
                    "consumable_code": self.code.name,
                    "consumable_code_number": int(self.code),
                    "rule": self.rule,
                    **self.details,
                },
            )


def _allows(entries: Sequence[str], value: str) -> bool:
    return ALL in entries or value in entries


def _shown(entries: Iterable[str]) -> str:
    listed = list(entries)
    return "[" + ", ".join(listed) + "]" if listed else "[] (empty: allows none)"


def check_consumable(
    policy: AccessPolicy,
    consumer: str,
    algorithm: AlgorithmRef,
    *,
    network: bool = False,
    isolation: str = "sandbox",
) -> Verdict:
    """May ``consumer`` run ``algorithm`` on the dataset under ``policy``, in an environment
    with this ``network`` and ``isolation``? Pure: no catalog, no clock."""
    where = f"{policy.context}/{policy.name}"

    def refuse(code: Consumable, rule: str, why: str, **details: Any) -> Verdict:
        return Verdict(code, rule, f"{code.name}: {where} {why} (rule: {rule})", details)

    if policy.disabled:
        return refuse(Consumable.DISABLED, "disabled", "is disabled by its publisher")
    if consumer in policy.deny_consumers:
        return refuse(Consumable.IN_DENY_LIST, "deny_consumers", f"denies consumer {consumer!r}")
    if not _allows(policy.allow_consumers, consumer):
        return refuse(
            Consumable.NOT_IN_ALLOW_LIST,
            "allow_consumers",
            f"does not allow consumer {consumer!r}: allowed {_shown(policy.allow_consumers)}",
        )
    if policy.access != "compute":
        return Verdict(Consumable.OK, "download", f"{where}: download access, any algorithm")
    if isolation != "sandbox":
        return refuse(
            Consumable.ISOLATION_REQUIRED,
            "isolation",
            f"is compute-only and the environment's isolation is {isolation!r}: use an "
            "environment with isolation: sandbox",
        )
    if network and not policy.allow_network:
        return refuse(
            Consumable.NETWORK_NOT_ALLOWED,
            "allow_network",
            "does not allow network access and the environment has network: true",
        )
    if algorithm.kind == "raw":
        if policy.allow_raw_algorithm:
            return Verdict(Consumable.OK, "allow_raw_algorithm", f"{where}: raw algorithms allowed")
        return refuse(
            Consumable.RAW_ALGORITHM_NOT_ALLOWED,
            "allow_raw_algorithm",
            "does not allow raw algorithms: run a trusted service or algorithm bundle",
        )
    return _check_trust(policy, algorithm, refuse, where)


def _check_trust(policy: AccessPolicy, algorithm: AlgorithmRef, refuse: Any, where: str) -> Verdict:
    """Trusted when listed (with its pinned code hash) or when its publisher is trusted."""
    listed = [t for t in policy.trusted_algorithms if t.id in (algorithm.id, ALL)]
    for trusted in listed:
        if trusted.id == ALL or trusted.code_hash in (None, ALL, algorithm.code_hash):
            return Verdict(
                Consumable.OK, "trusted_algorithms", f"{where}: {algorithm.id} is trusted"
            )
    if algorithm.publisher and _allows(policy.trusted_publishers, algorithm.publisher):
        return Verdict(
            Consumable.OK,
            "trusted_publishers",
            f"{where}: publisher {algorithm.publisher!r} is trusted",
        )
    if listed:
        pinned = listed[0].code_hash
        return refuse(
            Consumable.CODE_HASH_MISMATCH,
            "trusted_algorithms",
            f"trusts {algorithm.id} with code hash {pinned} but its code hash is now "
            f"{algorithm.code_hash}: the code changed since it was trusted; re-publish with "
            f"--trust {algorithm.id} to trust the new code",
            pinned_code_hash=pinned,
            current_code_hash=algorithm.code_hash,
        )
    trusted_ids = [t.id for t in policy.trusted_algorithms]
    if not trusted_ids and policy.trusted_publishers:
        return refuse(
            Consumable.PUBLISHER_NOT_TRUSTED,
            "trusted_publishers",
            f"does not trust publisher {algorithm.publisher!r} of {algorithm.id}: trusted "
            f"publishers {_shown(policy.trusted_publishers)}",
        )
    return refuse(
        Consumable.ALGORITHM_NOT_TRUSTED,
        "trusted_algorithms",
        f"does not trust algorithm {algorithm.id}: trusted algorithms {_shown(trusted_ids)}, "
        f"trusted publishers {_shown(policy.trusted_publishers)}",
    )


# -- the catalog part -------------------------------------------------------------------------
def _strings(values: Iterable[str], what: str) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{what}: expected non-empty strings, got {value!r}")
        if value not in found:
            found.append(value)
    return tuple(found)


def publish(
    context: str,
    name: str,
    access: str,
    *,
    trusted_algorithms: Iterable[TrustedAlgorithm] = (),
    trusted_publishers: Iterable[str] = (),
    allow_raw_algorithm: bool = False,
    allow_network: bool = False,
    allow_consumers: Iterable[str] = (ALL,),
    deny_consumers: Iterable[str] = (),
    disabled: bool = False,
    publisher: str = "",
    workspace: Workspace | None = None,
) -> AccessPolicy:
    """Set the access policy of bundle ``name`` in ``context`` (which must hold a version of
    it); replaces an existing policy whole. One transaction."""
    workspace = workspace or open_workspace()
    check_bundle_name(name)
    if access not in ACCESS_KINDS:
        raise InvalidInput(f"access must be one of {', '.join(ACCESS_KINDS)}, not {access!r}")
    trusted = tuple(trusted_algorithms)
    for entry in trusted:
        if not entry.id:
            raise InvalidInput("trusted_algorithms: an entry has an empty id")
    row = {
        "access": access,
        "disabled": bool(disabled),
        "allow_raw_algorithm": bool(allow_raw_algorithm),
        "allow_network": bool(allow_network),
        "trusted_algorithms": json.dumps([t.to_primitive() for t in trusted], sort_keys=True),
        "trusted_publishers": json.dumps(_strings(trusted_publishers, "trusted_publishers")),
        "allow_consumers": json.dumps(_strings(allow_consumers, "allow_consumers")),
        "deny_consumers": json.dumps(_strings(deny_consumers, "deny_consumers")),
        "publisher": publisher,
    }
    now = time.time()
    with workspace.write() as conn:
        ctx_id = require_context(conn, context)
        found = queries.find_bundles(
            conn, queries.BundleQuery(context_id=ctx_id, name=name, limit=1)
        )
        if not found:
            raise BundleNotFound(
                f"no bundle named {name!r} in context {context!r} to publish; add it first"
            )
        policy_queries.upsert_policy(conn, ctx_id, name, {**row, "created": now, "updated": now})
        stored = policy_queries.policy(conn, ctx_id, name)
    return _from_row(stored)


def get_policy(context: str, name: str, *, workspace: Workspace | None = None) -> AccessPolicy:
    """The policy of ``name`` in ``context``; the open default (``published=False``) when none
    was published."""
    workspace = workspace or open_workspace()
    with workspace.read() as conn:
        ctx_id = require_context(conn, context)
        row = policy_queries.policy(conn, ctx_id, name)
    if row is None:
        return AccessPolicy(context=context, name=name, published=False)
    return _from_row(row)


def list_policies(
    context: str | None = None, *, workspace: Workspace | None = None
) -> list[AccessPolicy]:
    workspace = workspace or open_workspace()
    with workspace.read() as conn:
        ctx_id = require_context(conn, context) if context is not None else None
        rows = policy_queries.list_policies(conn, ctx_id)
    return [_from_row(row) for row in rows]


def unpublish(context: str, name: str, *, workspace: Workspace | None = None) -> bool:
    """Remove the policy (the name becomes open again); False when there was none."""
    workspace = workspace or open_workspace()
    with workspace.write() as conn:
        return policy_queries.delete_policy(conn, require_context(conn, context), name)


def _from_row(row: Any) -> AccessPolicy:
    return AccessPolicy(
        context=row.context,
        name=row.name,
        access=row.access,
        disabled=bool(row.disabled),
        allow_raw_algorithm=bool(row.allow_raw_algorithm),
        allow_network=bool(row.allow_network),
        trusted_algorithms=tuple(
            TrustedAlgorithm.from_primitive(v) for v in json.loads(row.trusted_algorithms)
        ),
        trusted_publishers=tuple(json.loads(row.trusted_publishers)),
        allow_consumers=tuple(json.loads(row.allow_consumers)),
        deny_consumers=tuple(json.loads(row.deny_consumers)),
        publisher=row.publisher,
        created=row.created,
        updated=row.updated,
    )
