"""A stat cache: (path, inode, size, mtime) -> blob hash, so unchanged files are not re-hashed.

It is local to one machine (inodes mean nothing elsewhere), so it lives in its own SQLite file
under ``ASSAY_HOME`` whatever the catalog is. An entry is trusted only while the file's inode,
size and mtime are all unchanged. A file modified within the last two seconds is not cached:
its mtime may not yet tell a later write apart (the "racy git" problem).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

_RACY_WINDOW_NS = 2_000_000_000


class StatCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open(str(path))
        except sqlite3.Error:
            # The cache is an optimisation: one that cannot be opened (a full disk, a file
            # size limit, a read-only home) must not fail an add. Files are hashed instead.
            self._db = self._open(":memory:")

    @staticmethod
    def _open(where: str) -> sqlite3.Connection:
        db = sqlite3.connect(where, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS stat_cache ("
                " path TEXT PRIMARY KEY, inode INTEGER, size INTEGER, mtime_ns INTEGER,"
                " blob_hash TEXT)"
            )
        except sqlite3.Error:
            db.close()
            raise
        return db

    def lookup_tree(self, root: Path) -> dict[str, tuple[int, int, int, str]]:
        """Every cached entry under ``root`` (one range query), keyed by absolute path."""
        prefix = str(root).rstrip("/") + "/"
        rows = self._db.execute(
            "SELECT path, inode, size, mtime_ns, blob_hash FROM stat_cache"
            " WHERE path >= ? AND path < ?",
            (prefix, prefix[:-1] + chr(ord("/") + 1)),
        )
        return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}

    def lookup(self, path: Path) -> tuple[int, int, int, str] | None:
        row = self._db.execute(
            "SELECT inode, size, mtime_ns, blob_hash FROM stat_cache WHERE path = ?",
            (str(path),),
        ).fetchone()
        return (row[0], row[1], row[2], row[3]) if row else None

    def record(self, entries: Iterable[tuple[str, os.stat_result, str]]) -> None:
        """Remember ``(absolute path, stat, blob hash)`` entries, skipping racy ones."""
        now_ns = time.time_ns()
        rows = [
            (path, stat.st_ino, stat.st_size, stat.st_mtime_ns, blob_hash)
            for path, stat, blob_hash in entries
            if now_ns - stat.st_mtime_ns > _RACY_WINDOW_NS
        ]
        if not rows:
            return
        try:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO stat_cache VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except sqlite3.OperationalError:
            # The cache is an optimisation: a locked or read-only cache must not fail an add;
            # the files are simply hashed again next time.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()


def cached_hash(entry: tuple[int, int, int, str] | None, stat: os.stat_result) -> str | None:
    """The cached hash when ``entry`` still describes the file ``stat`` describes."""
    if entry is None:
        return None
    inode, size, mtime_ns, blob_hash = entry
    if (inode, size, mtime_ns) == (stat.st_ino, stat.st_size, stat.st_mtime_ns):
        return blob_hash
    return None
