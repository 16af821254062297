"""``assay doctor``: the state of the store/catalog pair (and of one context), and the
explicit way out of a mismatch (``adopt``)."""

from __future__ import annotations

from dataclasses import dataclass

from assay.bundles import binding, operations, remotes
from assay.bundles.workspace import Workspace
from assay.catalog import remote_queries
from assay.core.records import BundleRecord


@dataclass(frozen=True)
class ContextHealth:
    name: str
    bundles: int
    remote: str | None
    #: Bundles some of whose blobs are not in the local store (not localized, or lost).
    incomplete: tuple[BundleRecord, ...]


@dataclass(frozen=True)
class HealthReport:
    binding: binding.BindingState
    context: ContextHealth | None


def examine(workspace: Workspace, context: str | None = None) -> HealthReport:
    """Inspect the pair (reads only: nothing is bound, moved or removed)."""
    with workspace.mapped_errors():
        state = binding.inspect(workspace.engine, workspace.store, workspace.settings.catalog_url)
    return HealthReport(state, _context(workspace, context) if context is not None else None)


def _context(workspace: Workspace, name: str) -> ContextHealth:
    records = operations.search(workspace, name)
    bound = remotes.binding(workspace, name)
    with workspace.read() as conn:
        files = remote_queries.files_of_many(conn, [r.uuid for r in records])
    local = workspace.store.existing({f.blob_hash for entries in files.values() for f in entries})
    incomplete = tuple(r for r in records if any(f.blob_hash not in local for f in files[r.uuid]))
    return ContextHealth(name, len(records), str(bound) if bound else None, incomplete)


def adopt(workspace: Workspace, force: bool = False) -> str:
    """Bind the store to the workspace's catalog explicitly (see ``binding.adopt``)."""
    with workspace.mapped_errors():
        bound = binding.adopt(
            workspace.engine, workspace.store, workspace.settings.catalog_url, force
        )
    workspace.require_bound(recheck=True)
    return bound
