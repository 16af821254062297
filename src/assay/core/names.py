"""The naming rules for contexts, bundles, tag keys and labels, in one place."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from assay.core.errors import InvalidLabel, InvalidName, InvalidTag

TAG_KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*(?<!_)$")
LABEL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*(?<!-)$")
#: Longest context or bundle name (the catalog columns are 128 characters wide).
MAX_NAME_LENGTH = 128
NAME_RULE = (
    "1-128 characters, not '.' or '..', without '/', '\\' or control characters "
    "(Disdat's names, e.g. '___test_context___', are accepted)"
)


def _name_problem(name: object, what: str) -> str | None:
    """Why ``name`` cannot be a context or bundle name, or None when it can.

    The rule is Disdat's (any text) minus what could escape a folder or break a line: path
    separators, ``.``/``..``, control characters (NUL included: PostgreSQL text cannot hold it).
    """
    if not isinstance(name, str):
        return f"a {what} name must be text, not {type(name).__name__}"
    if not name or not name.strip():
        return f"a {what} name cannot be empty or blank"
    if len(name) > MAX_NAME_LENGTH:
        return f"a {what} name has at most {MAX_NAME_LENGTH} characters"
    if name in (".", ".."):
        return f"{name!r} cannot be a {what} name"
    if "/" in name or "\\" in name:
        return f"a {what} name cannot contain '/' or '\\'"
    if any(unicodedata.category(char) == "Cc" for char in name):
        return f"a {what} name cannot contain control characters"
    return None


def check_context_name(name: str) -> str:
    problem = _name_problem(name, "context")
    if problem is not None:
        raise InvalidName(f"invalid context name {name!r}: {problem} (use {NAME_RULE})")
    return name


def check_bundle_name(name: str) -> str:
    """A context name's rule, and no ``@``: it separates name and uuid in ``assay://`` URIs."""
    problem = _name_problem(name, "bundle")
    if problem is None and "@" in name:
        problem = "a bundle name cannot contain '@' (it separates name and uuid in assay:// URIs)"
    if problem is not None:
        raise InvalidName(f"invalid bundle name {name!r}: {problem} (use {NAME_RULE})")
    return name


def check_tag_key(key: str) -> str:
    if not isinstance(key, str) or not TAG_KEY_PATTERN.fullmatch(key):
        raise InvalidTag(
            f"invalid tag key {key!r}: tag keys match ^[a-z0-9][a-z0-9_]*(?<!_)$ "
            "(lower-case letters, digits and underscores, not ending in '_')"
        )
    return key


def check_label(label: str) -> str:
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label):
        raise InvalidLabel(
            f"invalid label {label!r}: labels match ^[a-z0-9][a-z0-9-]*(?<!-)$ "
            "(lower-case letters, digits and hyphens, not ending in '-')"
        )
    return label


def check_tags(tags: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate every key of ``tags``; returns a plain dict copy."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidTag(f"tags must be a mapping of key to value, not {type(tags).__name__}")
    for key in tags:
        check_tag_key(key)
    return dict(tags)


def bundle_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Bundle tags as Disdat keeps them: valid keys, string values (numbers become text).

    A NUL character is refused: PostgreSQL text cannot hold it, and both backends must agree.
    """
    values = {key: str(value) for key, value in check_tags(tags).items()}
    for key, value in values.items():
        if "\x00" in value:
            raise InvalidTag(f"tag {key!r}: a tag value cannot contain a NUL character")
    return values


def check_labels(labels: Iterable[str] | None) -> set[str]:
    if labels is None:
        return set()
    if isinstance(labels, str):
        labels = labels.split()
    return {check_label(label) for label in labels}


def parse_tag_options(texts: Iterable[str] | None) -> dict[str, str]:
    """Several ``key=value`` tags as a dict; a key given twice is refused (``InvalidTag``),
    even with the same value, rather than one of them silently winning."""
    tags: dict[str, str] = {}
    for text in texts or []:
        key, value = parse_tag_option(text)
        if key in tags:
            raise InvalidTag(
                f"tag {key!r} is given twice ({key}={tags[key]} and {key}={value}); "
                "give each tag key once"
            )
        tags[key] = value
    return tags


def parse_tag_option(text: str) -> tuple[str, str]:
    """Parse a command-line ``key=value`` tag."""
    key, sep, value = text.partition("=")
    if not sep:
        raise InvalidTag(f"invalid tag {text!r}: write tags as key=value")
    return check_tag_key(key.strip()), value
