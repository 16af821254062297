"""Binding a blob store to its catalog, so a wrong or empty catalog can never collect blobs.

Both sides carry one id: ``store/STORE_ID`` and the catalog's ``meta`` row ``store_id``.
Every write and every collection checks that they agree (``check``; one file read and one
row read, once per workspace). When they do not, the rule is:

1. **A store that holds no blobs joins the catalog**: it takes the catalog's id (the catalog
   gets a new id if it has none). Nothing can be lost: there is nothing to collect. This is
   how a new pair is made, and how a fresh store joins a shared (PostgreSQL) catalog.
2. **A store with blobs and no id** (made before binding existed) is adopted when the catalog
   has bundles and references at least half of the store's blobs (so ``gc`` would keep at
   least half): the store takes the catalog's id as in 1.
3. **Anything else is refused** with ``StoreCatalogMismatch`` (exit 4): a store with blobs
   whose id differs from the catalog's, or whose catalog is empty or has no id (the catalog
   file was emptied or replaced, or ``ASSAY_CATALOG_URL`` points at another database).

``assay doctor`` shows the state; ``assay doctor --adopt`` binds explicitly when the catalog
references at least one of the store's blobs, and ``--adopt --force`` binds regardless (e.g.
a store kept while its catalog was lost). An explicit binding gives the store the catalog's
id (a new one if the catalog has none), so the store's previous catalog no longer matches.

Binding decisions run under the store's exclusive lock (``collecting``): no add is between
writing its blobs and committing its rows meanwhile. ``check`` must therefore be called
before taking the store's shared lock, never while holding it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from assay.catalog import meta_queries, queries
from assay.catalog.engine import masked
from assay.core.errors import StoreCatalogMismatch
from assay.store import identity
from assay.store.blobstore import BlobStore

_WAY_OUT = (
    "point ASSAY_CATALOG_URL (or ASSAY_HOME) back at this store's catalog, or run "
    "'assay doctor' for the way out"
)


@dataclass(frozen=True)
class Evidence:
    """What the catalog and the store hold, counted in full (for doctor and adoption)."""

    bundles: int
    store_blobs: int
    store_bytes: int
    referenced: int
    referenced_present: int

    @property
    def consistent(self) -> bool:
        """The legacy-adoption rule: the catalog has bundles and references at least half
        of the store's blobs."""
        return self.bundles > 0 and 2 * self.referenced_present >= self.store_blobs


@dataclass(frozen=True)
class BindingState:
    """The pair as ``assay doctor`` reports it."""

    store_root: str
    store_id: str | None
    catalog: str
    catalog_id: str | None
    evidence: Evidence
    quarantined: int
    status: str  # "bound", "new", "adoptable" or "mismatch"
    problem: str | None
    way_out: tuple[str, ...] = field(default=())


def _write_conn(engine: Engine) -> Connection:
    return engine.connect().execution_options(assay_write=True)


def _catalog_id(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return meta_queries.get(conn, meta_queries.STORE_ID)


def check(engine: Engine, store: BlobStore, catalog_url: str) -> str:
    """The id store and catalog share; binds them by the rule above, or raises
    ``StoreCatalogMismatch``."""
    store_id = identity.read(store.root)
    if store_id is not None and store_id == _catalog_id(engine):
        return store_id
    with store.collecting():
        store_id = identity.read(store.root)
        catalog_id = _catalog_id(engine)
        if store_id is not None and store_id == catalog_id:
            return store_id
        if not store.has_any_blob():
            return _join(engine, store, catalog_id)
        evidence = None
        if store_id is None:
            evidence = gather(engine, store)
            if evidence.consistent:
                return _join(engine, store, catalog_id)
        raise StoreCatalogMismatch(
            _problem(store, catalog_url, store_id, catalog_id, engine, evidence) + "; " + _WAY_OUT,
            {"store_id": store_id, "catalog_store_id": catalog_id},
        )


def _join(engine: Engine, store: BlobStore, catalog_id: str | None) -> str:
    """Give the store the catalog's id (the catalog first gets a new one if it has none).
    The caller holds the store's exclusive lock."""
    if catalog_id is None:
        with _write_conn(engine) as conn, conn.begin():
            catalog_id = meta_queries.put_if_absent(conn, meta_queries.STORE_ID, identity.new_id())
    return identity.write(store.root, catalog_id, replace=True)


def gather(engine: Engine, store: BlobStore) -> Evidence:
    """Count bundles, blobs and how many referenced blobs are stored (a full listing)."""
    with engine.connect() as conn:
        bundles = meta_queries.bundle_count(conn)
        referenced = queries.referenced_blobs(conn)
    blobs = bytes_ = present = 0
    for blob in store.iter_blobs():
        blobs += 1
        bytes_ += blob.size
        if blob.blob_hash in referenced:
            present += 1
    return Evidence(bundles, blobs, bytes_, len(referenced), present)


def _problem(
    store: BlobStore,
    catalog_url: str,
    store_id: str | None,
    catalog_id: str | None,
    engine: Engine,
    evidence: Evidence | None,
) -> str:
    where = f"the catalog at {masked(catalog_url)}"
    root = store.root
    if store_id is not None and catalog_id is not None:
        return (
            f"the store at {root} belongs to another catalog than {where} (store id "
            f"{store_id}, catalog's store id {catalog_id}); refusing to write or collect"
        )
    if store_id is not None:
        with engine.connect() as conn:
            has_bundles = meta_queries.has_bundles(conn)
        what = "has bundles but was not made with it" if has_bundles else "is empty (or new)"
        return (
            f"{where} {what}, while the store at {root} holds blobs of catalog {store_id}; "
            "refusing to write or collect, which could lose them"
        )
    assert evidence is not None
    return (
        f"the store at {root} holds {evidence.store_blobs} blob(s) but {where} "
        f"({evidence.bundles} bundle(s)) references only {evidence.referenced_present} of them; "
        "refusing to adopt it automatically"
    )


def inspect(engine: Engine, store: BlobStore, catalog_url: str) -> BindingState:
    """The full state of the pair, with what to do about it (reads only)."""
    store_id = identity.read(store.root)
    catalog_id = _catalog_id(engine)
    evidence = gather(engine, store)
    quarantined = len(store.quarantined())
    base = (str(store.root), store_id, masked(catalog_url), catalog_id, evidence, quarantined)
    if store_id is not None and store_id == catalog_id:
        return BindingState(*base, "bound", None)
    if evidence.store_blobs == 0:
        return BindingState(*base, "new", None, ("the pair is bound on the first write",))
    if store_id is None and evidence.consistent:
        return BindingState(
            *base, "adoptable", None, ("the store is adopted by this catalog on the first write",)
        )
    problem = _problem(store, catalog_url, store_id, catalog_id, engine, evidence)
    way_out = [
        "if the catalog moved: point ASSAY_CATALOG_URL (or ASSAY_HOME) back at the catalog "
        "this store belongs to",
    ]
    if evidence.referenced_present > 0:
        way_out.append(
            f"if this catalog is the right one ({evidence.referenced_present} of the store's "
            "blobs are its bundles'): 'assay doctor --adopt'"
        )
    else:
        way_out.append(
            "to bind the store to this catalog anyway (its blobs are then unreferenced here; "
            "gc still refuses to remove more than half without --force): "
            "'assay doctor --adopt --force'"
        )
    return BindingState(*base, "mismatch", problem, tuple(way_out))


def adopt(engine: Engine, store: BlobStore, catalog_url: str, force: bool = False) -> str:
    """Bind the store to this catalog explicitly; returns the shared id.

    Without ``force`` the catalog must reference at least one of the store's blobs (or the
    store must hold none); with ``force`` it is bound regardless.
    """
    with store.collecting():
        store_id = identity.read(store.root)
        catalog_id = _catalog_id(engine)
        if store_id is not None and store_id == catalog_id:
            return store_id
        evidence = gather(engine, store)
        if evidence.store_blobs and not evidence.referenced_present and not force:
            raise StoreCatalogMismatch(
                f"the catalog at {masked(catalog_url)} references none of the "
                f"{evidence.store_blobs} blob(s) in the store at {store.root}; binding them "
                "would make every blob unreferenced: pass --force (Python: force=True) if "
                "that is what you want"
            )
        # A catalog without an id gets a fresh one, so the store's previous catalog (which
        # holds the store's old id) no longer matches the store.
        return _join(engine, store, catalog_id)
