"""``Bundle``: the Disdat-shaped handle for making and reading one bundle.

Make one as a context manager (the bundle is written when the block ends without an error, and
nothing is written when it raises)::

    with Bundle("analysis", "results") as b:
        with b.make_file("table.csv").open("w") as f:
            f.write("a,b\\n1,2\\n")
        b.add_data({"table": b.make_file("table.csv"), "rows": 1})
        b.add_tags({"stage": "raw"})

or call ``open()`` and ``close()``. Read one with ``assay.api.get`` / ``search``. A closed bundle
is immutable: only its tags and its committed flag change afterwards.
"""

from __future__ import annotations

import shutil
import time
import uuid as uuid_module
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from assay.bundles import operations, remotes
from assay.bundles import staging as staging_folders
from assay.bundles.codeversion import code_version
from assay.bundles.presentation import FileTarget, safe_bundle_path
from assay.bundles.workspace import Workspace, open_workspace
from assay.core.errors import BundleClosed, InvalidInput
from assay.core.names import bundle_tags, check_bundle_name, check_context_name
from assay.core.records import BundleRecord, Dependency, FileEntry

_UNSET = object()


@dataclass(frozen=True)
class Lineage:
    """How one bundle was made: its upstream bundles, code version, params and timing."""

    uuid: str
    processing_name: str
    depends_on: dict[str, str]  # argument name -> upstream uuid
    code_version: dict[str, Any]
    params: dict[str, Any]
    start_time: float | None
    stop_time: float | None


class Bundle:
    """A bundle being made (open) or already stored (closed)."""

    def __init__(
        self,
        local_context: str,
        name: str | None = None,
        owner: str = "",
        processing_name: str | None = None,
    ) -> None:
        self.local_context = check_context_name(local_context)
        self._name = check_bundle_name(name) if name is not None else None
        self._owner = owner
        self._processing_name = processing_name
        self._uuid = str(uuid_module.uuid4())
        self._data: Any = _UNSET
        self._tags: dict[str, str] = {}
        self._params: dict[str, Any] = {}
        self._dependencies: list[Dependency] = []
        self._record: BundleRecord | None = None
        self._staging: Path | None = None
        self._staging_fd: int | None = None
        self._start: float | None = None
        self._workspace: Workspace | None = None

    @classmethod
    def _from_record(cls, record: BundleRecord, workspace: Workspace) -> Bundle:
        bundle = cls(record.context, record.name, record.owner, record.processing_name)
        bundle._uuid = record.uuid
        bundle._record = record
        bundle._workspace = workspace
        return bundle

    # -- life cycle ---------------------------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = open_workspace()
        return self._workspace

    @property
    def is_open(self) -> bool:
        return self._staging is not None

    @property
    def closed(self) -> bool:
        return self._record is not None

    def open(self) -> Bundle:
        if self._record is not None:
            raise BundleClosed(f"bundle {self.name}@{self.uuid[:8]} is closed; make a new one")
        if self._name is None:
            raise InvalidInput("a new bundle needs a name: Bundle(context, name)")
        if self._staging is None:
            with self.workspace.read() as conn:
                operations.require_context(conn, self.local_context)
            staging = self.workspace.settings.home / "staging" / self._uuid
            self._staging_fd = staging_folders.claim(staging)
            self._staging = staging
            self._start = time.time()
        return self

    def close(self) -> Bundle:
        """Store the bundle: its files to the blob store, then its rows in one transaction."""
        staging = self._require_open()
        data = self._data
        if data is _UNSET:
            staged = sorted(p for p in staging.rglob("*") if p.is_file())
            data = [Path(p) for p in staged] if staged else None
        try:
            self._record = operations.create_bundle(
                self.workspace,
                self.local_context,
                self.name,
                data,
                tags=self._tags,
                dependencies=self._dependencies,
                params=self._params,
                processing_name=self._processing_name,
                owner=self._owner or None,
                start_time=self._start,
                code_version=code_version(),
                staging=staging,
                bundle_uuid=self._uuid,
            )
        finally:
            self._discard_staging()
        return self

    def abandon(self) -> None:
        """Throw away an open bundle; nothing is written."""
        self._discard_staging()

    def _discard_staging(self) -> None:
        if self._staging is not None and self._staging_fd is not None:
            staging_folders.release(self._staging_fd, self._staging)
        self._staging = None
        self._staging_fd = None

    def __enter__(self) -> Bundle:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()

    def _require_open(self) -> Path:
        if self._staging is None:
            state = "closed" if self._record is not None else "not open"
            raise BundleClosed(
                f"bundle {self.name!r} is {state}: use 'with Bundle(ctx, name) as b:' or b.open()"
            )
        return self._staging

    # -- building -----------------------------------------------------------------------------
    def add_data(self, data: Any) -> Bundle:
        """Attach the bundle's data; a later call replaces an earlier one (as in Disdat)."""
        self._require_open()
        self._data = data
        return self

    def add_tags(self, tags: dict[str, Any]) -> Bundle:
        """Add or update tags: on an open bundle before it is stored, on a closed one in place."""
        values = bundle_tags(tags)
        if self._record is not None:
            self._record = operations.add_tags(self.workspace, self._record.uuid, values)
        else:
            self._tags.update(values)
        return self

    def add_params(self, params: dict[str, Any]) -> Bundle:
        self._require_open()
        self._params.update(params)
        return self

    def add_dependency(self, bundle: Bundle | str, name: str | None = None) -> Bundle:
        """Record that ``bundle`` (a Bundle or a uuid) was used to make this one."""
        self._require_open()
        if isinstance(bundle, Bundle):
            upstream_uuid, default_name = bundle.uuid, bundle.name
        else:
            record = operations.resolve(self.workspace, None, bundle, by_name=False)
            upstream_uuid, default_name = record.uuid, record.name
        self._dependencies.append(Dependency(upstream_uuid, "depends_on", name or default_name))
        return self

    def make_file(self, filename: str) -> FileTarget:
        """A file inside the bundle to write to; pass it to ``add_data`` to include it."""
        staging = self._require_open()
        relative = safe_bundle_path(filename)
        return FileTarget(staging / relative, relative)

    def make_directory(self, dir_name: str) -> str:
        """A directory inside the bundle; everything written into it becomes part of it."""
        staging = self._require_open()
        relative = safe_bundle_path(dir_name)
        path = staging / relative
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def copy_in_file(self, existing_file: str | Path) -> FileTarget:
        """Copy an existing file into the bundle now; returns its target for ``add_data``."""
        staging = self._require_open()
        source = Path(existing_file)
        if not source.is_file():
            raise InvalidInput(f"cannot copy in {source}: not an existing file")
        target = FileTarget(staging / source.name, source.name)
        if Path(target.path).exists():
            raise InvalidInput(f"the bundle already has a file named {source.name!r}")
        shutil.copyfile(source, target.path)
        return target

    # -- a closed bundle ----------------------------------------------------------------------
    def _require_record(self) -> BundleRecord:
        if self._record is None:
            raise BundleClosed(f"bundle {self.name!r} has not been closed (stored) yet")
        return self._record

    @property
    def record(self) -> BundleRecord:
        return self._require_record()

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str:
        if self._name is None:
            raise InvalidInput("this bundle has no name")
        return self._name

    @property
    def processing_name(self) -> str:
        return (
            self._record.processing_name if self._record else (self._processing_name or self.name)
        )

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._record.tags if self._record else self._tags)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._record.params if self._record else self._params)

    @property
    def creation_date(self) -> datetime:
        return datetime.fromtimestamp(self._require_record().created, UTC)

    @property
    def committed(self) -> bool:
        return self._require_record().committed

    @property
    def content_hash(self) -> str:
        return self._require_record().content_hash

    @property
    def presentation(self) -> str:
        return self._require_record().presentation

    @property
    def lineage(self) -> Lineage:
        record = self._require_record()
        return Lineage(
            uuid=record.uuid,
            processing_name=record.processing_name,
            depends_on={d.arg_name or d.uuid: d.uuid for d in record.dependencies},
            code_version=dict(record.code_version),
            params=dict(record.params),
            start_time=record.start_time,
            stop_time=record.stop_time,
        )

    @property
    def data(self) -> Any:
        """The data as it was saved (files as paths in a read-only, verified view)."""
        return operations.load_data(self.workspace, self._require_record())

    def cat(self) -> Any:
        return self.data

    @property
    def files(self) -> list[FileEntry]:
        return operations.files_of(self.workspace, self._require_record())

    def commit(self) -> Bundle:
        record = self._require_record()
        self._record = operations.commit(self.workspace, record.context, uuid=record.uuid)
        return self

    def rm(self, force: bool = False) -> None:
        record = self._require_record()
        operations.remove(self.workspace, record.context, uuid=record.uuid, force=force)

    # -- remotes ------------------------------------------------------------------------------
    def push(self) -> Bundle:
        """Push this (committed) bundle to its context's remote: ``api.push(uuid=...)``."""
        record = self._require_record()
        remotes.push(self.workspace, record.context, uuid=record.uuid)
        return self

    def pull(self, localize: bool = False) -> Bundle:
        """Pull this bundle's record again from the remote, and its file data if ``localize``."""
        record = self._require_record()
        remotes.pull(self.workspace, record.context, uuid=record.uuid, localize=localize)
        return self

    def localize(self) -> Bundle:
        """Download this bundle's file data from its context's remote (verified by hash)."""
        record = self._require_record()
        remotes.localize_bundle(self.workspace, record.context, uuid=record.uuid)
        return self

    def delocalize(self) -> Bundle:
        """Free this bundle's local file data; it must be safely on the remote."""
        record = self._require_record()
        remotes.delocalize_bundle(self.workspace, record.context, uuid=record.uuid)
        return self

    @property
    def localized(self) -> bool:
        """True when every file of the bundle is in the local store."""
        return remotes.is_localized(self.workspace, self._require_record())

    def __repr__(self) -> str:
        state = "closed" if self._record else "open" if self._staging else "new"
        return f"<Bundle {self.local_context}/{self._name}@{self._uuid[:8]} {state}>"
