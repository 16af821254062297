"""The naming rules: the documented patterns and the checks agree (hypothesis)."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from assay.core import names
from assay.core.errors import InvalidLabel, InvalidName, InvalidTag

# The rules as the error messages state them, matched against the WHOLE string.
TAG_KEY_RULE = re.compile(r"[a-z0-9][a-z0-9_]*(?<!_)")
LABEL_RULE = re.compile(r"[a-z0-9][a-z0-9-]*(?<!-)")


def name_rule(name: str) -> bool:
    """The context/bundle name rule as the error message states it (Disdat's, minus paths)."""
    return (
        0 < len(name) <= 128
        and name.strip() != ""
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name)
    )


# Characters near the rules' edges, plus anything at all.
_near = st.text(alphabet="abcxyzAZ0129_-. /\\\t\x7f\u00e9@", max_size=12)
_candidates = st.one_of(_near, st.text(max_size=12))


def _accepts(check: object, value: str, error: type[Exception]) -> bool:
    try:
        check(value)  # type: ignore[operator]
    except error:
        return False
    return True


@settings(deadline=None)  # no wall-clock limits in tests (CONVENTIONS)
@given(key=_candidates)
def test_tag_key_check_agrees_with_the_rule(key: str) -> None:
    if key.endswith("\n"):
        return  # trailing newlines: see test_a_trailing_newline_is_refused
    assert _accepts(names.check_tag_key, key, InvalidTag) == bool(TAG_KEY_RULE.fullmatch(key))


@settings(deadline=None)  # no wall-clock limits in tests (CONVENTIONS)
@given(label=_candidates)
def test_label_check_agrees_with_the_rule(label: str) -> None:
    if label.endswith("\n"):
        return
    assert _accepts(names.check_label, label, InvalidLabel) == bool(LABEL_RULE.fullmatch(label))


@settings(deadline=None)  # no wall-clock limits in tests (CONVENTIONS)
@given(name=st.one_of(_candidates, st.text(alphabet="ab.", min_size=120, max_size=140)))
@example(name="___test_context___")
@example(name="..")
def test_name_checks_agree_with_the_rule(name: str) -> None:
    expected = name_rule(name)
    assert _accepts(names.check_context_name, name, InvalidName) == expected
    assert _accepts(names.check_bundle_name, name, InvalidName) == (expected and "@" not in name)


@pytest.mark.parametrize(
    "name", ["___test_context___", "_leading", "-dash", "with space", "Ünïcode", "a..b", "x" * 128]
)
def test_disdat_style_names_are_accepted(name: str) -> None:
    assert names.check_context_name(name) == name
    assert names.check_bundle_name(name) == name


@settings(deadline=None)  # no wall-clock limits in tests (CONVENTIONS)
@given(key=st.from_regex(TAG_KEY_RULE, fullmatch=True))
@example(key="a")
@example(key="a_b_0")
def test_every_valid_tag_key_is_accepted(key: str) -> None:
    assert names.check_tag_key(key) == key


@pytest.mark.parametrize("key", ["Bad", "a_", "-x", "with space", "_a", "", "a-b", "é"])
def test_bad_tag_keys(key: str) -> None:
    with pytest.raises(InvalidTag, match=re.escape(f"invalid tag key {key!r}")):
        names.check_tag_key(key)
    with pytest.raises(InvalidTag):
        names.check_tags({key: "v"})


@pytest.mark.parametrize("label", ["Bad", "a-", "-x", "with space", "a_b", ""])
def test_bad_labels(label: str) -> None:
    with pytest.raises(InvalidLabel, match=re.escape(f"invalid label {label!r}")):
        names.check_label(label)
    with pytest.raises(InvalidLabel):
        names.check_labels([label, "fine"])


def test_labels_from_a_string_are_split_on_white_space() -> None:
    assert names.check_labels("a b-c  d1") == {"a", "b-c", "d1"}
    assert names.check_labels(None) == set()


def test_tags_must_be_a_mapping() -> None:
    with pytest.raises(InvalidTag, match="tags must be a mapping"):
        names.check_tags([("a", "b")])  # type: ignore[arg-type]


def test_parse_tag_option() -> None:
    assert names.parse_tag_option("stage=raw=1") == ("stage", "raw=1")
    with pytest.raises(InvalidTag, match="write tags as key=value"):
        names.parse_tag_option("stage")


@pytest.mark.parametrize(
    ("check", "error"),
    [
        (names.check_tag_key, InvalidTag),
        (names.check_label, InvalidLabel),
        (names.check_context_name, InvalidName),
        (names.check_bundle_name, InvalidName),
    ],
    ids=["tag-key", "label", "context", "bundle"],
)
def test_a_trailing_newline_is_refused(check: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        check("abc\n")  # type: ignore[operator]
