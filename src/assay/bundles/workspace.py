"""A workspace: the settings, catalog engine, blob store and stat cache used together.

One workspace is opened per (ASSAY_HOME, catalog URL) in a process and reused, so the catalog
engine and its migration check happen once.

Every catalog transaction goes through ``read()`` or ``write()``, which map a database that
cannot be reached, written or grown to ``CatalogUnavailable`` / ``StorageFull`` (the mapping
itself is ``catalog.engine.catalog_error``): no raw driver error reaches a caller. Writing
(``write()``, ``writing()``) and collecting (``collecting()``) first check that the store and
the catalog are a pair (``bundles/binding.py``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DatabaseError

from assay.bundles import binding
from assay.catalog.engine import catalog_error, create_catalog_engine
from assay.core.settings import Settings, load_settings
from assay.store.blobstore import BlobStore
from assay.store.statcache import StatCache


@dataclass
class Workspace:
    settings: Settings
    engine: Engine
    store: BlobStore
    _stat_cache: StatCache | None = field(default=None, repr=False)
    _bound_id: str | None = field(default=None, repr=False)

    @property
    def stat_cache(self) -> StatCache:
        if self._stat_cache is None:
            self._stat_cache = StatCache(self.settings.stat_cache_path)
        return self._stat_cache

    @contextlib.contextmanager
    def mapped_errors(self) -> Iterator[None]:
        """Turn a database failure that means "the catalog is unusable" into an Assay error."""
        try:
            yield
        except DatabaseError as exc:
            mapped = catalog_error(exc, self.settings.catalog_url)
            if mapped is None:
                raise
            raise mapped from None

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.mapped_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite): all or nothing."""
        self.require_bound()
        with self.mapped_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(assay_write=True)
            with conn.begin():
                yield conn

    def require_bound(self, recheck: bool = False) -> str:
        """The id store and catalog share (binding a new pair); ``StoreCatalogMismatch``
        when they are not a pair. Checked once per workspace unless ``recheck``. Never call
        it while holding the store's shared lock (a binding takes the exclusive one)."""
        if self._bound_id is None or recheck:
            with self.mapped_errors():
                self._bound_id = binding.check(self.engine, self.store, self.settings.catalog_url)
        return self._bound_id

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Check the binding, then hold the store's shared lock (blobs until the commit)."""
        self.require_bound()
        with self.store.writing():
            yield

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        """Check the binding afresh, then hold the store's exclusive lock (removing blobs)."""
        self.require_bound(recheck=True)
        with self.store.collecting():
            yield

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
            workspace = Workspace(
                settings,
                engine,
                BlobStore(settings.store_root, settings.fsync, settings.pack_threshold),
            )
            _workspaces[key] = workspace
        return workspace


def close_workspaces() -> None:
    """Close every open workspace (tests and long-lived processes switching homes)."""
    with _lock:
        for workspace in _workspaces.values():
            workspace.close()
        _workspaces.clear()
