"""Properties of the hashes everything is addressed by."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.hashing import (
    LARGE_FILE_BYTES,
    canonical_json,
    hash_bytes,
    hash_file,
    is_blob_hash,
    tree_hash,
)

_hex = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
_entries = st.dictionaries(
    st.text(min_size=1, max_size=20), st.tuples(_hex, st.integers(0, 2**40)), max_size=10
).map(lambda d: [(path, blob, size) for path, (blob, size) in d.items()])

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)


@settings(deadline=None)  # no wall-clock limits in tests (CONVENTIONS)
@given(entries=_entries, values=_json, seed=st.integers())
def test_tree_hash_ignores_entry_order(
    entries: list[tuple[str, str, int]], values: Any, seed: int
) -> None:
    shuffled = list(entries)
    random.Random(seed).shuffle(shuffled)
    assert tree_hash(shuffled, values) == tree_hash(entries, values)
    assert tree_hash(iter(shuffled), values) == tree_hash(entries, values)  # any iterable
    assert is_blob_hash(tree_hash(entries, values))


@settings(deadline=None)  # no wall-clock limits in tests (CONVENTIONS)
@given(entries=_entries.filter(bool), values=_json, data=st.data())
def test_tree_hash_sees_every_field(
    entries: list[tuple[str, str, int]], values: Any, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(entries) - 1))
    path, blob, size = entries[index]
    others = [e for i, e in enumerate(entries) if i != index]
    original = tree_hash(entries, values)
    assert tree_hash([*others, (path, blob, size + 1)], values) != original
    other_blob = hash_bytes(blob.encode())
    assert tree_hash([*others, (path, other_blob, size)], values) != original
    assert tree_hash(others, values) != original
    assert tree_hash(entries, {"different": values}) != original


@settings(deadline=None)  # no wall-clock limits in tests (CONVENTIONS)
@given(value=_json, seed=st.integers())
def test_canonical_json_is_stable(value: Any, seed: int) -> None:
    text = canonical_json(value)
    assert json.loads(text) == value  # round-trips
    assert canonical_json(json.loads(text)) == text  # a fixed point
    assert canonical_json(_reorder(value, random.Random(seed))) == text  # key order is ignored
    separators = _outside_strings(text)
    assert " " not in separators and "\n" not in separators  # no insignificant white space


def _reorder(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _reorder(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_reorder(item, rng) for item in value]
    return value


def _outside_strings(text: str) -> str:
    """``text`` with JSON string literals blanked, to look at the separators only."""
    out, inside, escaped = [], False, False
    for char in text:
        if inside:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                inside = False
            continue
        if char == '"':
            inside = True
            continue
        out.append(char)
    return "".join(out)


def test_canonical_json_known_form() -> None:
    assert canonical_json({"b": [1, 2.5, None], "a": "é"}) == '{"a":"é","b":[1,2.5,null]}'


@settings(deadline=None)  # no wall-clock limits in tests (CONVENTIONS)
@given(data=st.binary(max_size=4096))
def test_hash_file_equals_hash_bytes(tmp_path_factory: Any, data: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("h")) / "f"
    path.write_bytes(data)
    assert hash_file(path) == hash_bytes(data)
    assert is_blob_hash(hash_bytes(data))


def test_hash_file_large_path_equals_hash_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * (LARGE_FILE_BYTES // 256 + 3)
    path = tmp_path / "large"
    path.write_bytes(data)
    assert hash_file(path) == hash_bytes(data)
