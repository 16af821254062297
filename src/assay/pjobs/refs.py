"""Late-bound links from a job's ``data``: files it acts on and references it acts using.

Like SD2E's ``refs_from_data_dict``: string values found (at any depth) under ``data["inputs"]``
and ``data["parameters"]`` are sorted into *files* (``assay://`` bundle URIs, ``file://``,
``s3://``, ``gs://`` URLs and absolute paths) and *references* (``http://``/``https://`` URLs).
Files become the job's ``acted_on`` links, references its ``acted_using`` links.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from assay.core.errors import InvalidInput

FILE_SCHEMES = ("assay://", "file://", "s3://", "gs://")
REFERENCE_SCHEMES = ("http://", "https://")
STORES = ("files", "references")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def classify(value: str) -> str | None:
    """ "files", "references", or None for a string that names neither."""
    if value.startswith(REFERENCE_SCHEMES):
        return "references"
    if value.startswith(FILE_SCHEMES) or value.startswith("/"):
        return "files"
    return None


def refs_from_data_dict(data: dict[str, Any] | None, store: str = "files") -> list[str]:
    """Sorted, de-duplicated file (or reference) URIs found in ``data``'s inputs/parameters."""
    if store not in STORES:
        raise InvalidInput(f"store must be one of {', '.join(STORES)}, not {store!r}")
    found: set[str] = set()
    for key in ("inputs", "parameters"):
        for text in _strings((data or {}).get(key)):
            if classify(text) == store:
                found.add(text)
    return sorted(found)
