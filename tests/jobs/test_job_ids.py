"""Deterministic job ids."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay.core.errors import InvalidInput
from assay.jobs.ids import JOB_NAMESPACE, job_id


def test_same_parts_same_id_and_key_order_does_not_matter() -> None:
    a = job_id("svc:1", "hash", {"x": 1, "y": [1, 2]})
    b = job_id("svc:1", "hash", {"y": [1, 2], "x": 1})
    assert a == b
    assert uuid.UUID(a).version == 5
    assert a == str(uuid.uuid5(JOB_NAMESPACE, '["svc:1","hash",{"x":1,"y":[1,2]}]'))


def test_different_parts_different_ids() -> None:
    assert job_id("a", 1) != job_id("a", "1")
    assert job_id(["a", "b"]) != job_id("a", "b")


def test_non_json_parts_are_refused() -> None:
    with pytest.raises(InvalidInput, match="plain JSON"):
        job_id(Path("/tmp"))
    with pytest.raises(InvalidInput):
        job_id(float("nan"))


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=6))
def test_dict_insertion_order_never_changes_the_id(mapping: dict[str, int]) -> None:
    reordered = dict(reversed(list(mapping.items())))
    assert job_id(mapping) == job_id(reordered)
