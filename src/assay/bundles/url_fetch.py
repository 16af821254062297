"""Download datasets named by URL (``s3://``, ``file://``, ...) through the remote machinery,
cached by content hash.

Each object's bytes go into the local blob store (named by their BLAKE3 hash) and a small
cache remembers ``(url, size, version token) -> blob hash``, the token being the object's ETag
(S3) or modification time. A second download of unchanged data is one listing and local
copies: no object is read again. Identical content under two URLs is stored once. The cached
blobs belong to no bundle, so ``assay gc`` frees them (the next download fetches again).
"""

from __future__ import annotations

import os
import posixpath
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from assay.bundles.workspace import Workspace, open_workspace
from assay.core.errors import InvalidInput, PathNotFound, StorageError
from assay.core.hashing import hash_file
from assay.store.remote import RemoteStore

_lock = threading.Lock()


@dataclass(frozen=True)
class FetchReport:
    files: int
    files_downloaded: int
    bytes_downloaded: int


class UrlCache:
    """``(url, size, token) -> blob hash`` in ``$ASSAY_HOME/url_cache.db``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS url_cache ("
            " url TEXT PRIMARY KEY, size INTEGER, token TEXT, blob_hash TEXT)"
        )

    def lookup(self, url: str, size: int, token: str) -> str | None:
        row = self._db.execute(
            "SELECT blob_hash FROM url_cache WHERE url = ? AND size = ? AND token = ?",
            (url, size, token),
        ).fetchone()
        return row[0] if row and token else None

    def record(self, url: str, size: int, token: str, blob_hash: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO url_cache (url, size, token, blob_hash) VALUES (?, ?, ?, ?)",
            (url, size, token, blob_hash),
        )

    def close(self) -> None:
        self._db.close()


def _safe_target(directory: str, relative: str, where: str) -> Path:
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts):
        raise InvalidInput(f"{where}: refusing unsafe file path {relative!r}")
    return Path(directory, *parts)


def fetch_url(
    url: str, directory: str, where: str, workspace: Workspace | None = None
) -> FetchReport:
    """Materialise the object at ``url`` (as its base name) or every object under it (with
    their relative paths) into ``directory``."""
    workspace = workspace or open_workspace()
    store = RemoteStore(url)
    entries = store.find("")
    if not entries:
        raise PathNotFound(f"{where}: nothing found at {url}")
    base_name = posixpath.basename(store.url.rstrip("/"))
    cache = UrlCache(workspace.settings.home / "url_cache.db")
    downloaded = downloaded_bytes = 0
    try:
        with workspace.writing():
            plan: list[tuple[str, str, int, str, Path]] = []
            for relative, size, token in entries:
                object_url = f"{store.url}/{relative}" if relative else store.url
                target = _safe_target(directory, relative or base_name, where)
                plan.append((relative, object_url, size, token, target))

            def one(item: tuple[str, str, int, str, Path]) -> int:
                relative, object_url, size, token, target = item
                with _lock:
                    known = cache.lookup(object_url, size, token)
                if known is None or not workspace.store.has(known):
                    known = _download_blob(workspace, store, relative)
                    with _lock:
                        cache.record(object_url, size, token, known)
                    fetched = size
                else:
                    fetched = -1
                target.parent.mkdir(parents=True, exist_ok=True)
                workspace.store.materialize(known, target, ("reflink", "copy"))
                os.chmod(target, 0o644)  # the caller's copy: writable, unlike a view
                return fetched

            results = store.parallel(one, plan)
    finally:
        cache.close()
    for fetched in results:
        if fetched >= 0:
            downloaded += 1
            downloaded_bytes += fetched
    return FetchReport(len(plan), downloaded, downloaded_bytes)


def _download_blob(workspace: Workspace, store: RemoteStore, key: str) -> str:
    temp = workspace.store.incoming_path("00" * 32)
    try:
        store.download(key, str(temp))
        blob_hash = hash_file(temp)
        final = workspace.store.incoming_path(blob_hash)
        os.replace(temp, final)
        if not workspace.store.adopt(final, blob_hash):
            raise StorageError(f"could not store the download of {store.url}/{key}")
        return blob_hash
    except OSError as exc:
        raise StorageError(f"downloading {store.url}/{key} failed: {exc}") from None
    finally:
        if temp.exists():
            temp.unlink()
