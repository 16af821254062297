"""Turning ``--trust`` specs into trusted-algorithm entries, pinning code hashes at publish time.

- ``namespace/name:tag`` -- a registered service: its current code hash is pinned (a later
  change of its code makes jobs with it refused with ``CODE_HASH_MISMATCH``);
- ``namespace/name:tag@<code hash>`` -- the same with the hash given (a service not installed
  here, or one pinned from ``assay services show``);
- ``assay://context/name[@uuid]`` -- an algorithm bundle: the content hash of its newest (or the
  named) version is pinned;
- ``*`` -- every algorithm (no pin).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from assay.bundles import operations
from assay.bundles.workspace import Workspace, open_workspace
from assay.computejobs.algorithms import service_identity
from assay.core.errors import InvalidInput
from assay.core.hashing import is_blob_hash
from assay.core.manifest import parse_reference
from assay.jobs import policies
from assay.jobs.policies import ALL, AccessPolicy, TrustedAlgorithm
from assay.services.config import parse_sruid


def trusted_entry(spec: str, workspace: Workspace) -> TrustedAlgorithm:
    """One ``--trust`` value as a trusted algorithm with its pinned code hash."""
    spec = spec.strip()
    if spec == ALL:
        return TrustedAlgorithm(ALL)
    if spec.startswith("assay://"):
        reference = parse_reference(spec)
        assert reference.context is not None and reference.name is not None
        record = operations.require(workspace, reference.context, reference.name, reference.uuid)
        return TrustedAlgorithm(f"assay://{record.context}/{record.name}", record.content_hash)
    sruid, _, pinned = spec.partition("@")
    if pinned:
        if not is_blob_hash(pinned):
            raise InvalidInput(
                f"--trust {spec}: {pinned!r} is not a code hash (64 hex digits, as "
                "'assay services show' prints)"
            )
        parse_sruid(sruid, require_tag=True)
        return TrustedAlgorithm(sruid, pinned)
    full_sruid, _folder, code_hash, _namespace = service_identity(sruid)
    return TrustedAlgorithm(full_sruid, code_hash)


def publish_dataset(
    context: str,
    name: str,
    access: str,
    *,
    trust: Sequence[str] = (),
    trust_publishers: Iterable[str] = (),
    allow_raw_algorithm: bool = False,
    allow_network: bool = False,
    allow_consumers: Iterable[str] = (ALL,),
    deny_consumers: Iterable[str] = (),
    disabled: bool = False,
    publisher: str = "",
    workspace: Workspace | None = None,
) -> AccessPolicy:
    """Resolve every ``trust`` spec (pinning hashes), then store the policy in one transaction
    (nothing is written when a spec cannot be resolved)."""
    workspace = workspace or open_workspace()
    if access == "download" and (trust or allow_raw_algorithm):
        raise InvalidInput(
            "--trust and --allow-raw-algorithm apply to --access compute (download access lets "
            "any algorithm run)"
        )
    entries = [trusted_entry(spec, workspace) for spec in trust]
    return policies.publish(
        context,
        name,
        access,
        trusted_algorithms=entries,
        trusted_publishers=trust_publishers,
        allow_raw_algorithm=allow_raw_algorithm,
        allow_network=allow_network,
        allow_consumers=allow_consumers,
        deny_consumers=deny_consumers,
        disabled=disabled,
        publisher=publisher,
        workspace=workspace,
    )


def describe_service(sruid: str) -> dict[str, Any]:
    """What ``assay services show`` prints: the full SRUID, its folder and current code hash."""
    full_sruid, folder, code_hash, namespace = service_identity(sruid)
    return {
        "service": full_sruid,
        "folder": str(folder),
        "code_hash": code_hash,
        "publisher": namespace,
    }
