"""Serving a bundle's files to a remote reader: path checks and hash-verified blobs.

A file is found by its path *in the catalog* (the bundle's file list), never by joining a
user's path onto a folder, so no path can reach outside the store; paths with ``..``, a
leading ``/``, backslashes or NUL are still refused outright, so a probing client gets a clear
error rather than a 404 that invites more guesses.

Before a blob is served its bytes are hashed and compared with its name: a corrupted blob is
refused (``BlobCorrupted``), never sent. Blobs are immutable, so a verification is remembered
for the blob file's identity (inode, size, modification and change times): any write to the
file changes that identity and forces a fresh check. Silent media corruption that changes no
metadata is caught by ``assay verify``, not here.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from assay.bundles import operations
from assay.bundles.workspace import Workspace
from assay.catalog import queries
from assay.core.errors import BlobCorrupted, BlobMissing, FileNotInFilterSet, InvalidInput
from assay.core.hashing import hash_file
from assay.core.records import BundleRecord, FileEntry

_CACHE_SIZE = 4096


def check_bundle_path(path: str) -> str:
    """``path`` when it is a plain relative path inside a bundle, else ``InvalidInput``."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise InvalidInput(
            f"invalid file path {path!r}: use a relative path inside the bundle "
            "(no '..', no leading '/', no backslashes)",
            {"field": "path"},
        )
    return path


class _Verified:
    """Blob files whose bytes were checked, keyed by blob hash, with the identity checked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[int, int, int, int]] = OrderedDict()

    def check(self, blob_hash: str, path: Path) -> None:
        try:
            before = os.stat(path)
        except FileNotFoundError:
            raise BlobMissing(f"blob {blob_hash} is missing from the store") from None
        identity = (before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns)
        with self._lock:
            if self._seen.get(blob_hash) == identity:
                self._seen.move_to_end(blob_hash)
                return
        if hash_file(path, before.st_size) != blob_hash:
            with self._lock:
                self._seen.pop(blob_hash, None)
            raise BlobCorrupted(
                f"blob {blob_hash} is corrupted (its content no longer matches its hash); "
                "it is not served: restore it (assay pull) or remove the bundle"
            )
        with self._lock:
            self._seen[blob_hash] = identity
            while len(self._seen) > _CACHE_SIZE:
                self._seen.popitem(last=False)


_verified = _Verified()


def verified_file(workspace: Workspace, record: BundleRecord, path: str) -> tuple[FileEntry, Path]:
    """The file ``path`` of ``record`` and the store path of its verified blob."""
    check_bundle_path(path)
    with workspace.read() as conn:
        entry = queries.bundle_file(conn, record.uuid, path)
    if entry is None:
        raise FileNotInFilterSet(
            f"bundle {record.name}@{record.uuid[:8]} has no file {path!r}", {"field": "path"}
        )
    blob = workspace.store.path_for(entry.blob_hash)
    if not blob.exists():
        problem = operations.not_localized(workspace, record)
        if problem is not None:
            raise problem
    _verified.check(entry.blob_hash, blob)
    return entry, blob
