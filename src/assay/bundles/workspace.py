"""A workspace: the settings, catalog engine, blob store and stat cache used together.

One workspace is opened per (ASSAY_HOME, catalog URL) in a process and reused, so the catalog
engine and its migration check happen once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from assay.catalog.engine import create_catalog_engine
from assay.core.settings import Settings, load_settings
from assay.store.blobstore import BlobStore
from assay.store.statcache import StatCache


@dataclass
class Workspace:
    settings: Settings
    engine: Engine
    store: BlobStore
    _stat_cache: StatCache | None = field(default=None, repr=False)

    @property
    def stat_cache(self) -> StatCache:
        if self._stat_cache is None:
            self._stat_cache = StatCache(self.settings.stat_cache_path)
        return self._stat_cache

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite): all or nothing."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(assay_write=True)
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()
        if self._stat_cache is not None:
            self._stat_cache.close()
            self._stat_cache = None


_workspaces: dict[tuple[str, str], Workspace] = {}
_lock = threading.Lock()


def open_workspace(settings: Settings | None = None) -> Workspace:
    """The workspace for ``settings`` (default: from the environment), opened once."""
    settings = settings or load_settings()
    key = (str(settings.home), settings.catalog_url)
    with _lock:
        workspace = _workspaces.get(key)
        if workspace is None or workspace.settings != settings:
            if workspace is not None:
                workspace.close()
            settings.home.mkdir(parents=True, exist_ok=True)
            engine = create_catalog_engine(settings.catalog_url)
            workspace = Workspace(settings, engine, BlobStore(settings.store_root, settings.fsync))
            _workspaces[key] = workspace
        return workspace


def close_workspaces() -> None:
    """Close every open workspace (tests and long-lived processes switching homes)."""
    with _lock:
        for workspace in _workspaces.values():
            workspace.close()
        _workspaces.clear()
