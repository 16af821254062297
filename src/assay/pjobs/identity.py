"""Deterministic identities: pipelines, upstream linkage (``child_of``) and hashes for paths.

A pipeline's UUID is UUID5 of its id in a fixed namespace. Upstream metadata ids
(experiment, sample or measurement) become UUID5 values in the same way unless they already
are UUIDs, so either the canonical id or its UUID may be passed (as in SD2E).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import blake3

from assay.core.errors import InvalidLinkage
from assay.core.hashing import canonical_json

#: Fixed namespace of every Assay pipeline/metadata UUID5 (never change: ids would move).
PIPELINE_NAMESPACE = uuid.UUID("6f1d7c1e-5b1a-5a43-9d0e-2f5c8a7e4b10")
#: Linkage keyword arguments, in SD2E's resolution order, with the kind of record each names.
LINKAGE_KINDS: tuple[tuple[str, str], ...] = (
    ("measurement_id", "measurement"),
    ("sample_id", "sample"),
    ("experiment_id", "experiment"),
)
#: Length of the hex hashes used as archive path elements.
PATH_HASH_LENGTH = 32


def pipeline_uuid(pipeline_id: str) -> str:
    """The stable UUID5 of a pipeline id."""
    return str(uuid.uuid5(PIPELINE_NAMESPACE, f"pipeline:{pipeline_id}"))


def is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except (ValueError, AttributeError, TypeError):
        return False


def metadata_uuid(kind: str, identifier: str) -> str:
    """``identifier`` itself when it is a UUID, else UUID5 of ``kind:identifier``."""
    if is_uuid(identifier):
        return identifier.lower()
    return str(uuid.uuid5(PIPELINE_NAMESPACE, f"{kind}:{identifier}"))


def resolve_linkage(ids: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The one linkage kind given in ``ids`` and its sorted, de-duplicated UUIDs (``child_of``).

    ``ids`` maps ``experiment_id``/``sample_id``/``measurement_id`` to a string or a list of
    strings (None or absent: not given). Raises ``InvalidLinkage`` when none or several kinds
    are given, or a value is empty or not a string.
    """
    given = [(arg, kind) for arg, kind in LINKAGE_KINDS if ids.get(arg) not in (None, [], ())]
    names = ", ".join(arg for arg, _ in LINKAGE_KINDS)
    if not given:
        raise InvalidLinkage(
            f"a managed pipeline job needs exactly one of {names} to link it upstream; "
            "none was given"
        )
    if len(given) > 1:
        raise InvalidLinkage(
            "a managed pipeline job is linked by exactly one kind of id; got "
            + " and ".join(arg for arg, _ in given)
        )
    arg, kind = given[0]
    raw = ids[arg]
    values: Sequence[Any] = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list | tuple):
        raise InvalidLinkage(f"{arg} must be a string or a list of strings")
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidLinkage(f"{arg} values must be non-empty strings, not {value!r}")
    return kind, sorted({metadata_uuid(kind, value.strip()) for value in values})


def short_hash(value: Any) -> str:
    """A hex BLAKE3 hash (``PATH_HASH_LENGTH`` digits) of ``value``'s canonical JSON."""
    return blake3.blake3(canonical_json(value).encode()).hexdigest()[:PATH_HASH_LENGTH]


def compact_uuid(value: str) -> str:
    """A UUID without its dashes (SD2E's "compressed" path element)."""
    return value.replace("-", "")
