"""Catalog URIs (``assay://<context>/<name>[@<uuid>]``) as folders of verified files."""

from __future__ import annotations

from pathlib import Path

from assay.bundles import operations, remotes, views
from assay.bundles.workspace import Workspace, open_workspace
from assay.core.errors import InvalidManifest
from assay.core.manifest import parse_reference
from assay.core.records import BundleRecord


def _resolve(uri: str) -> tuple[Workspace, BundleRecord]:
    """The bundle a catalog URI names, localized first when it was pulled without its data."""
    reference = parse_reference(uri)
    if reference.kind != "catalog" or reference.context is None or reference.name is None:
        raise InvalidManifest(f"{uri!r} is not a catalog URI (assay://<context>/<name>[@<uuid>])")
    workspace = open_workspace()
    if reference.uuid is not None:
        record = operations.require(workspace, reference.context, uuid=reference.uuid)
        if record.name != reference.name:
            raise InvalidManifest(
                f"{uri}: bundle {reference.uuid} is named {record.name!r}, not {reference.name!r}"
            )
    else:
        record = operations.require(workspace, reference.context, reference.name)
    if operations.not_localized(workspace, record) is not None and not remotes.is_localized(
        workspace, record
    ):
        remotes.localize_bundle(workspace, record.context, uuid=record.uuid)
    return workspace, record


def materialize_uri(uri: str, dest: Path) -> Path:
    """Copy the bundle's files (verified against their hashes) into ``dest``; returns it. A
    pulled bundle that is not localized is localized first (downloaded, verified)."""
    workspace, record = _resolve(uri)
    dest.mkdir(parents=True, exist_ok=True)
    files = operations.files_of(workspace, record)
    return views.materialize_files(workspace, files, dest, record=False)


def view_of_uri(uri: str) -> Path:
    """The bundle's verified read-only view (``$ASSAY_HOME/views/<uuid>``), made or repaired
    as needed: a bundle never changes, so every reader of it can share one folder."""
    workspace, record = _resolve(uri)
    return views.bundle_view(workspace, record)
