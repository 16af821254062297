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

A blob that is not in this store (a bundle made on another machine that shares the catalog,
and pushed to its context's remote) is fetched from the context's remote by content hash,
verified by ``RemoteStore.download_blobs`` before it is published in the local store, and
served from there (so the next read is local). A corrupted remote object is refused
(``RemoteObjectCorrupted``); a blob the remote lacks is ``NotLocalized`` when the bundle was
never pushed there, ``BlobMissing`` when the catalog says it was. A blob held in a pack file
is served from a verified copy under ``ASSAY_HOME/serving`` (small blobs only; safe to delete).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from assay.bundles import operations, remotes
from assay.bundles.workspace import Workspace
from assay.catalog import queries, remote_queries
from assay.core.errors import (
    BlobCorrupted,
    BlobMissing,
    FileNotInFilterSet,
    InvalidInput,
    NotLocalized,
)
from assay.core.hashing import hash_file
from assay.core.records import BundleRecord, FileEntry
from assay.core.remote_records import RemoteBinding
from assay.store.remote import RemoteStore

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
    """The file ``path`` of ``record`` and a local path of its verified blob (fetched from
    the context's remote first when this store lacks it)."""
    check_bundle_path(path)
    with workspace.read() as conn:
        entry = queries.bundle_file(conn, record.uuid, path)
    if entry is None:
        raise FileNotInFilterSet(
            f"bundle {record.name}@{record.uuid[:8]} has no file {path!r}", {"field": "path"}
        )
    blob = _local_blob(workspace, record, entry)
    try:
        _verified.check(entry.blob_hash, blob)
    except BlobCorrupted:
        if blob.is_relative_to(workspace.store.root):
            raise
        # A damaged copy out of a pack: remove it and copy again (verified from the pack).
        blob.unlink(missing_ok=True)
        blob = _local_blob(workspace, record, entry)
        _verified.check(entry.blob_hash, blob)
    return entry, blob


def _local_blob(workspace: Workspace, record: BundleRecord, entry: FileEntry) -> Path:
    store = workspace.store
    blob = store.path_for(entry.blob_hash)
    if blob.exists():
        return blob
    if not store.has(entry.blob_hash):
        with _fetching(entry.blob_hash):
            if not store.has(entry.blob_hash):  # another request may have fetched it
                _fetch_from_remote(workspace, record, entry)
    if blob.exists():
        return blob
    if store.has(entry.blob_hash):  # in a pack file: serve a verified copy of it
        copy = workspace.settings.home / "serving" / entry.blob_hash[:2] / entry.blob_hash[2:]
        if not copy.exists():
            with _fetching(entry.blob_hash):
                if not copy.exists():
                    store.materialize(entry.blob_hash, copy, ("copy",))
        return copy
    return blob  # missing: the check says so


def _fetch_from_remote(workspace: Workspace, record: BundleRecord, entry: FileEntry) -> None:
    """Download one blob from the remote of the bundle's context into the local store,
    verified (or raise the error that says why it cannot be served)."""
    bound = remotes.binding(workspace, record.context)
    if bound is None:
        problem = operations.not_localized(workspace, record)
        if problem is not None:
            raise problem
        raise BlobMissing(f"blob {entry.blob_hash} is missing from the store")
    remote = _remote_store(bound)
    try:
        with workspace.writing():
            remote.download_blobs(workspace.store, {entry.blob_hash: entry.size})
    except BlobMissing:
        with workspace.read() as conn:
            there = bound.location in remote_queries.locations_of(conn, record.uuid)
        if there:  # pushed, yet gone: the remote is damaged
            raise
        raise NotLocalized(
            f"bundle {record.name}@{record.uuid[:8]} has not been pushed: its files are neither "
            f"in this server's store nor on remote {bound.location}; push it from the machine "
            f"that made it ('assay push {record.name} -c {record.context}')"
        ) from None


_remotes: OrderedDict[tuple[str, str], RemoteStore] = OrderedDict()
_remotes_lock = threading.Lock()


def _remote_store(bound: RemoteBinding) -> RemoteStore:
    """One ``RemoteStore`` per remote and options in this process (a client is costly to
    make; a few are kept)."""
    key = (bound.url, repr(sorted(bound.options.items())))
    with _remotes_lock:
        found = _remotes.get(key)
        if found is not None:
            _remotes.move_to_end(key)
            return found
    made = remotes.open_store(bound)
    with _remotes_lock:
        _remotes[key] = made
        while len(_remotes) > 8:
            _remotes.popitem(last=False)
    return made


#: Striped locks: concurrent requests for one missing blob fetch it once (bounded memory).
_STRIPES = tuple(threading.Lock() for _ in range(64))


def _fetching(blob_hash: str) -> threading.Lock:
    return _STRIPES[int(blob_hash[:4], 16) % len(_STRIPES)]
