"""Properties of the consumability check over generated policies, consumers and algorithms."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assay.jobs.policies import (
    ALL,
    AccessPolicy,
    AlgorithmRef,
    Consumable,
    TrustedAlgorithm,
    check_consumable,
)

NAMES = st.sampled_from(["alice", "bob", "lab", "other", ALL])
IDS = st.sampled_from(["lab/a:1", "lab/b:1", "assay://x/algo", ALL])
HASHES = st.sampled_from(["h1", "h2", None])

policies = st.builds(
    AccessPolicy,
    context=st.just("ctx"),
    name=st.just("data"),
    access=st.sampled_from(["download", "compute"]),
    disabled=st.booleans(),
    allow_raw_algorithm=st.booleans(),
    allow_network=st.booleans(),
    trusted_algorithms=st.lists(st.builds(TrustedAlgorithm, IDS, HASHES), max_size=3).map(tuple),
    trusted_publishers=st.lists(NAMES, max_size=2).map(tuple),
    allow_consumers=st.lists(NAMES, max_size=2).map(tuple),
    deny_consumers=st.lists(NAMES.filter(lambda n: n != ALL), max_size=2).map(tuple),
)
algorithms = st.builds(
    AlgorithmRef,
    kind=st.sampled_from(["service", "bundle", "raw"]),
    id=st.sampled_from(["lab/a:1", "lab/b:1", "assay://x/algo"]),
    code_hash=st.sampled_from(["h1", "h2"]),
    publisher=st.sampled_from(["lab", "other", ""]),
)


@given(policies, st.sampled_from(["alice", "bob"]), algorithms, st.booleans(), st.booleans())
def test_ok_only_when_every_rule_allows(
    policy: AccessPolicy, consumer: str, algorithm: AlgorithmRef, network: bool, sandbox: bool
) -> None:
    isolation = "sandbox" if sandbox else "none"
    verdict = check_consumable(policy, consumer, algorithm, network=network, isolation=isolation)
    assert verdict.message and verdict.rule
    if not verdict.ok:
        assert verdict.message.startswith(verdict.code.name)
        assert f"(rule: {verdict.rule})" in verdict.message
        return
    assert not policy.disabled
    assert consumer not in policy.deny_consumers  # an explicit deny always wins
    assert ALL in policy.allow_consumers or consumer in policy.allow_consumers
    if policy.access == "compute":
        assert sandbox and (policy.allow_network or not network)
        if algorithm.kind == "raw":
            assert policy.allow_raw_algorithm
        else:
            trusted_by_id = any(
                t.id == ALL or (t.id == algorithm.id and t.code_hash in (None, algorithm.code_hash))
                for t in policy.trusted_algorithms
            )
            trusted_by_publisher = bool(algorithm.publisher) and (
                ALL in policy.trusted_publishers or algorithm.publisher in policy.trusted_publishers
            )
            assert trusted_by_id or trusted_by_publisher


@given(algorithms)
def test_empty_trust_lists_deny_every_published_algorithm(algorithm: AlgorithmRef) -> None:
    policy = AccessPolicy(context="c", name="d", access="compute")
    verdict = check_consumable(policy, "alice", algorithm)
    assert not verdict.ok
    expected = "raw" if algorithm.kind == "raw" else "trust"
    assert (verdict.code is Consumable.RAW_ALGORITHM_NOT_ALLOWED) == (expected == "raw")
