"""Content hashing: BLAKE3 for blobs, a Merkle root for datasets and bundles.

A blob hash is the 64-hex BLAKE3 digest of the bytes. A tree hash is the BLAKE3 digest of a
canonical, sorted listing of ``(path, blob hash, size)`` entries plus a canonical JSON encoding of
the values, so equal content gives an equal hash whatever the order it was added in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import blake3

HASH_NAME = "blake3"
HEX_LENGTH = 64
#: Files at least this large are hashed with several threads and memory mapping.
LARGE_FILE_BYTES = 8 * 1024 * 1024
_CHUNK = 1024 * 1024


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """The BLAKE3 hex digest of ``data``."""
    return blake3.blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str], size: int | None = None, threads: bool = True) -> str:
    """The BLAKE3 hex digest of a file's bytes; large files are memory-mapped and, unless
    ``threads`` is False (another thread is busy copying the same file), hashed by several
    threads."""
    if size is None:
        size = os.stat(path).st_size
    if size >= LARGE_FILE_BYTES:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if threads else 1)
        hasher.update_mmap(os.fspath(path))
        return hasher.hexdigest()
    with open(path, "rb") as handle:
        return blake3.blake3(handle.read()).hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant white space: a stable text for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tree_hash(entries: Iterable[tuple[str, str, int]], values: Any = None) -> str:
    """Merkle root over ``(path, blob_hash, size)`` entries and JSON-able ``values``.

    Entries are sorted by path first, so the order they were added in does not matter. Paths
    must be unique within one tree; the caller guarantees that.
    """
    hasher = blake3.blake3()
    for path, blob_hash, size in sorted(entries):
        hasher.update(f"F\0{path}\0{blob_hash}\0{size}\n".encode())
    hasher.update(b"V\0")
    hasher.update(canonical_json(values).encode())
    return hasher.hexdigest()


def is_blob_hash(text: str) -> bool:
    """True when ``text`` looks like a blob hash (64 lower-case hex digits)."""
    return len(text) == HEX_LENGTH and all(c in "0123456789abcdef" for c in text)
