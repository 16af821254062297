"""Index requests: which files of a job's archive become which bundles (SD2E's names).

``ArchiveIndexRequest(patterns, level="1", fixity=True)`` indexes matching files as the job's
archive at a level ("0" raw ... "3" published, free text allowed). ``ProductIndexRequest(
patterns, derived_from, derived_using=(), fixity=False)`` indexes matching files as products
linked ``derived_from`` upstream bundles and ``derived_using`` reference bundles.

``patterns`` are Python regular expressions searched in each file's path relative to the
archive folder (``re.search``). ``fixity``: ``True`` (BLAKE3 + size), ``False`` (none recorded
beyond the blob hash every bundle file has), or ``"sha256"`` / a list including it for
SHA-256 as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from assay.core.errors import InvalidIndexRequest

FIXITY_ALGORITHMS = ("blake3", "sha256")


def _patterns(patterns: Any) -> tuple[str, ...]:
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list | tuple) or not patterns:
        raise InvalidIndexRequest("an index request needs a non-empty list of patterns")
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise InvalidIndexRequest(f"pattern {pattern!r} is not a string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidIndexRequest(
                f"pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from None
    return tuple(patterns)


def _fixity(fixity: Any) -> tuple[str, ...]:
    if fixity is True:
        return ("blake3",)
    if fixity is False or fixity is None:
        return ()
    names = [fixity] if isinstance(fixity, str) else fixity
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise InvalidIndexRequest(f"fixity must be true, false or algorithm names, not {fixity!r}")
    unknown = sorted(set(names) - set(FIXITY_ALGORITHMS))
    if unknown:
        raise InvalidIndexRequest(
            f"unknown fixity algorithm(s) {', '.join(unknown)}; use {', '.join(FIXITY_ALGORITHMS)}"
        )
    return tuple(a for a in FIXITY_ALGORITHMS if a in names or a == "blake3")


def _references(values: Any, name: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise InvalidIndexRequest(f"{name} must be a list of bundle references (uuid or name)")
    return tuple(values)


@dataclass(frozen=True, init=False)
class ArchiveIndexRequest:
    patterns: tuple[str, ...]
    level: str
    fixity: tuple[str, ...]
    note: str | None
    kind = "archive"

    def __init__(
        self,
        patterns: Sequence[str] | str,
        level: str | int = "1",
        fixity: bool | str | Sequence[str] = True,
        note: str | None = None,
    ) -> None:
        object.__setattr__(self, "patterns", _patterns(patterns))
        object.__setattr__(self, "level", str(level))
        object.__setattr__(self, "fixity", _fixity(fixity))
        object.__setattr__(self, "note", note)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "patterns": list(self.patterns),
            "level": self.level,
            "fixity": list(self.fixity),
            "note": self.note,
        }


@dataclass(frozen=True, init=False)
class ProductIndexRequest:
    patterns: tuple[str, ...]
    derived_from: tuple[str, ...]
    derived_using: tuple[str, ...]
    fixity: tuple[str, ...]
    note: str | None
    kind = "product"

    def __init__(
        self,
        patterns: Sequence[str] | str,
        derived_from: Sequence[str] | str = (),
        derived_using: Sequence[str] | str = (),
        fixity: bool | str | Sequence[str] = False,
        note: str | None = None,
    ) -> None:
        object.__setattr__(self, "patterns", _patterns(patterns))
        object.__setattr__(self, "derived_from", _references(derived_from, "derived_from"))
        object.__setattr__(self, "derived_using", _references(derived_using, "derived_using"))
        object.__setattr__(self, "fixity", _fixity(fixity))
        object.__setattr__(self, "note", note)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "patterns": list(self.patterns),
            "derived_from": list(self.derived_from),
            "derived_using": list(self.derived_using),
            "fixity": list(self.fixity),
            "note": self.note,
        }


IndexRequest = ArchiveIndexRequest | ProductIndexRequest


def request_from(value: Any, kind: str) -> IndexRequest:
    """An index request from a request object, a dict (``as_dict`` shape) or a bare pattern."""
    if isinstance(value, ArchiveIndexRequest | ProductIndexRequest):
        if value.kind != kind:
            raise InvalidIndexRequest(f"a {value.kind} request given where {kind} ones go")
        return value
    if isinstance(value, str):
        value = {"patterns": [value]}
    if not isinstance(value, dict):
        raise InvalidIndexRequest(f"an index request is a mapping or a pattern, not {value!r}")
    fields = {k: v for k, v in value.items() if k != "kind"}
    allowed = (
        {"patterns", "level", "fixity", "note"}
        if kind == "archive"
        else {"patterns", "derived_from", "derived_using", "fixity", "note"}
    )
    unknown = sorted(set(fields) - allowed)
    if unknown or "patterns" not in fields:
        raise InvalidIndexRequest(
            f"a {kind} index request takes {', '.join(sorted(allowed))} (patterns required)"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    if kind == "archive":
        return ArchiveIndexRequest(**fields)
    return ProductIndexRequest(**fields)


def requests_from(values: Iterable[Any] | None, kind: str) -> list[IndexRequest]:
    return [request_from(value, kind) for value in (values or [])]
