"""Access policies and the consumability check: the pure rules, then the catalog part on
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from assay import api
from assay.bundles.workspace import open_workspace
from assay.catalog.schema import dataset_policies
from assay.core.errors import BundleNotFound, InvalidInput, NotConsumable
from assay.jobs.policies import (
    ALL,
    AccessPolicy,
    AlgorithmRef,
    Consumable,
    TrustedAlgorithm,
    check_consumable,
    get_policy,
    list_policies,
    publish,
    unpublish,
)

SERVICE = AlgorithmRef("service", "lab/count:1.0", "hash-now", "lab")
RAW = AlgorithmRef("raw", "raw", "raw-hash")


def _compute(**overrides: object) -> AccessPolicy:
    fields: dict[str, object] = {"context": "ctx", "name": "scans", "access": "compute"}
    fields.update(overrides)
    return AccessPolicy(**fields)  # type: ignore[arg-type]


def test_empty_allow_list_denies_and_star_allows_all() -> None:
    verdict = check_consumable(_compute(), "alice", SERVICE)
    assert verdict.code is Consumable.ALGORITHM_NOT_TRUSTED
    assert "rule: trusted_algorithms" in verdict.message and "empty: allows none" in verdict.message
    star = _compute(trusted_algorithms=(TrustedAlgorithm(ALL),))
    assert check_consumable(star, "alice", SERVICE).ok
    assert check_consumable(_compute(trusted_publishers=(ALL,)), "alice", SERVICE).ok
    assert not check_consumable(_compute(allow_consumers=()), "alice", SERVICE).ok


def test_pinned_code_hash_must_still_match() -> None:
    policy = _compute(trusted_algorithms=(TrustedAlgorithm("lab/count:1.0", "hash-then"),))
    verdict = check_consumable(policy, "alice", SERVICE)
    assert verdict.code is Consumable.CODE_HASH_MISMATCH
    assert "hash-then" in verdict.message and "hash-now" in verdict.message
    with pytest.raises(NotConsumable) as caught:
        verdict.raise_unless_ok()
    assert caught.value.details["consumable_code"] == "CODE_HASH_MISMATCH"
    assert caught.value.details["pinned_code_hash"] == "hash-then"
    assert caught.value.details["current_code_hash"] == "hash-now"
    assert caught.value.exit_code == 9
    same = _compute(trusted_algorithms=(TrustedAlgorithm("lab/count:1.0", "hash-now"),))
    assert check_consumable(same, "alice", SERVICE).rule == "trusted_algorithms"


def test_raw_algorithms_need_the_flag() -> None:
    verdict = check_consumable(_compute(trusted_algorithms=(TrustedAlgorithm(ALL),)), "a", RAW)
    assert verdict.code is Consumable.RAW_ALGORITHM_NOT_ALLOWED
    assert "rule: allow_raw_algorithm" in verdict.message
    assert check_consumable(_compute(allow_raw_algorithm=True), "a", RAW).ok


def test_consumer_lists_deny_wins_and_disabled_first() -> None:
    trusting = {"trusted_algorithms": (TrustedAlgorithm(ALL),)}
    denied = _compute(deny_consumers=("mallory",), **trusting)
    assert check_consumable(denied, "mallory", SERVICE).code is Consumable.IN_DENY_LIST
    assert check_consumable(denied, "alice", SERVICE).ok
    only_bob = _compute(allow_consumers=("bob",), **trusting)
    verdict = check_consumable(only_bob, "alice", SERVICE)
    assert verdict.code is Consumable.NOT_IN_ALLOW_LIST and int(verdict.code) == 3
    assert check_consumable(_compute(disabled=True, **trusting), "bob", SERVICE).code == 1


def test_publisher_trust_and_its_own_code() -> None:
    policy = _compute(trusted_publishers=("other",))
    assert check_consumable(policy, "a", SERVICE).code is Consumable.PUBLISHER_NOT_TRUSTED
    assert check_consumable(_compute(trusted_publishers=("lab",)), "a", SERVICE).ok


def test_environment_network_and_isolation() -> None:
    trusting = _compute(trusted_algorithms=(TrustedAlgorithm(ALL),))
    assert (
        check_consumable(trusting, "a", SERVICE, network=True).code
        is Consumable.NETWORK_NOT_ALLOWED
    )
    assert (
        check_consumable(trusting, "a", SERVICE, isolation="none").code
        is Consumable.ISOLATION_REQUIRED
    )
    open_policy = AccessPolicy(context="ctx", name="scans")
    assert check_consumable(open_policy, "a", RAW, network=True, isolation="none").ok


def _add(tmp_path: Path, context: str, name: str) -> None:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "a.txt").write_text("a\n")
    api.context(context)
    api.add(context, name, str(folder))


def _policy_rows() -> int:
    with open_workspace().read() as conn:
        return conn.execute(select(func.count()).select_from(dataset_policies)).scalar_one()


def test_publish_round_trip_replace_and_unpublish(assay_home: Path, tmp_path: Path) -> None:
    _add(tmp_path, "hospital", "scans")
    assert get_policy("hospital", "scans").published is False
    stored = publish(
        "hospital",
        "scans",
        "compute",
        trusted_algorithms=[TrustedAlgorithm("lab/count:1.0", "abc")],
        trusted_publishers=["lab", "lab"],
        allow_consumers=["alice"],
        publisher="hospital-admin",
    )
    assert stored.trusted_publishers == ("lab",)
    assert get_policy("hospital", "scans") == stored
    again = publish("hospital", "scans", "download")
    assert again.access == "download" and again.trusted_algorithms == ()
    assert again.created == stored.created and _policy_rows() == 1
    assert [p.name for p in list_policies()] == ["scans"]
    assert unpublish("hospital", "scans") and not unpublish("hospital", "scans")
    assert _policy_rows() == 0


def test_publish_bad_input_writes_nothing(assay_home: Path, tmp_path: Path) -> None:
    _add(tmp_path, "hospital", "scans")
    with pytest.raises(BundleNotFound, match="no bundle named 'nothing'"):
        publish("hospital", "nothing", "compute")
    with pytest.raises(InvalidInput, match="access must be one of"):
        publish("hospital", "scans", "stream")
    with pytest.raises(InvalidInput, match="trusted_publishers"):
        publish("hospital", "scans", "compute", trusted_publishers=[""])
    assert _policy_rows() == 0
    publish("hospital", "scans", "compute", allow_raw_algorithm=True)
    with pytest.raises(InvalidInput):
        publish("hospital", "scans", "bogus")
    assert get_policy("hospital", "scans").allow_raw_algorithm is True  # the old one stands
