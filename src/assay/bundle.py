"""``Bundle``: the Disdat-shaped handle for making and reading one bundle.

Make one as a context manager (the bundle is written when the block ends without an error, and
nothing is written when it raises)::

    with Bundle("analysis", "results") as b:
        with b.make_file("table.csv").open("w") as f:
            f.write("a,b\\n1,2\\n")
        b.add_data({"table": b.make_file("table.csv"), "rows": 1})
        b.add_tags({"stage": "raw"})

or call ``open()`` and ``close()``, or give the data at once: ``Bundle(ctx, name="x", data=v)``.
Read one with ``assay.api.get`` / ``search``. A closed bundle is immutable: only its tags and its
committed flag change afterwards. The constructor, methods and properties follow Disdat 1.2's
``api.Bundle`` (old and new names); the differences are listed in docs/porting.md.
"""

from __future__ import annotations

import shutil
import time
import uuid as uuid_module
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from assay.bundles import operations, views
from assay.bundles import staging as staging_folders
from assay.bundles.codeversion import code_version
from assay.bundles.presentation import FileTarget, safe_bundle_path
from assay.bundles.workspace import Workspace, open_workspace
from assay.core.errors import BundleClosed, InvalidInput
from assay.core.names import bundle_tags, check_bundle_name, check_context_name
from assay.core.records import BundleRecord, Dependency
from assay.stored_bundle import Lineage, StoredBundle

__all__ = ["Bundle", "Lineage"]

_UNSET = object()


class Bundle(StoredBundle):
    """A bundle being made (new or open) or already stored (closed).

    The constructor takes Disdat 1.2's keywords, in its order. Given ``data``, the bundle is
    written at once (``Bundle(ctx, name="x", data=df)``); otherwise open it (``with`` or
    ``open()``), add to it, and ``close()`` it. Tags, params, dependencies, code reference, git
    information, timing, ``name`` and ``processing_name`` can be set until it is closed;
    data and files only while it is open.
    """

    def __init__(
        self,
        local_context: str,
        name: str | None = None,
        data: Any = None,
        processing_name: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        dependencies: Mapping[str, Bundle | str] | None = None,
        code_method: str | None = None,
        vc_info: Sequence[str] | None = None,
        start_time: float = 0,
        stop_time: float = 0,
    ) -> None:
        self.local_context = check_context_name(local_context)
        self._name = check_bundle_name(name) if name is not None else None
        self._owner = owner or ""
        self._processing_name = processing_name
        self._uuid = str(uuid_module.uuid4())
        self._data: Any = _UNSET
        self._tags: dict[str, str] = {}
        self._params: dict[str, Any] = {}
        self._dependencies: list[Dependency] = []
        self._code_extra: dict[str, Any] = {}
        self._timing: tuple[float | None, float | None] = (start_time or None, stop_time or None)
        self._record: BundleRecord | None = None
        self._staging: Path | None = None
        self._staging_fd: int | None = None
        self._start: float | None = None
        self._workspace: Workspace | None = None
        if tags:
            self.add_tags(dict(tags))
        if params:
            self.add_params(dict(params))
        if dependencies:
            self.add_dependencies(list(dependencies.values()), list(dependencies.keys()))
        if code_method:
            self.add_code_ref(code_method)
        if vc_info:
            self.add_git_info(*vc_info)
        if data is not None:
            self.open()
            try:
                self.add_data(data)
            except BaseException:
                self.abandon()
                raise
            self.close()

    @classmethod
    def _from_record(cls, record: BundleRecord, workspace: Workspace) -> Bundle:
        bundle = cls(record.context, record.name, owner=record.owner)
        bundle._processing_name = record.processing_name
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

    def open(self, force_uuid: str | None = None) -> Bundle:
        """Start writing: a private staging folder for the bundle's files. ``force_uuid``
        (deprecated in Disdat too) gives the new bundle that uuid."""
        self._require_not_closed()
        if force_uuid is not None:
            self._uuid = str(uuid_module.UUID(str(force_uuid)))
        if self._staging is None:
            with self.workspace.read() as conn:
                operations.require_context(conn, self.local_context)
            staging = self.workspace.settings.home / "staging" / self._uuid
            self._staging_fd = staging_folders.claim(staging)
            self._staging = staging
            self._start = time.time()
        return self

    def close(self) -> Bundle:
        """Store the bundle: its files to the blob store, then its rows in one transaction.

        It needs a name by now (given, set with ``b.name = ...``, or the last part of the code
        reference, as Disdat does); a failure writes nothing and abandons the bundle.
        """
        staging = self._require_open()
        data = self._data
        if data is _UNSET:
            staged = sorted(p for p in staging.rglob("*") if p.is_file())
            data = [Path(p) for p in staged] if staged else None
        start, stop = self._timing
        try:
            if self._name is None and self._code_extra.get("code_method"):
                self._name = check_bundle_name(str(self._code_extra["code_method"]).split(".")[-1])
            if self._name is None:
                raise InvalidInput(
                    "a new bundle needs a name: Bundle(context, name), or set b.name before "
                    "the block ends"
                )
            self._record = operations.create_bundle(
                self.workspace,
                self.local_context,
                self._name,
                data,
                tags=self._tags,
                dependencies=self._dependencies,
                params=self._params,
                processing_name=self._processing_name,
                owner=self._owner or None,
                start_time=start if start is not None else self._start,
                stop_time=stop,
                code_version={**code_version(), **self._code_extra},
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
        # Unlike Disdat (which closes whatever happened), a block that raises writes nothing.
        if exc_type is None:
            self.close()
        else:
            self.abandon()

    def _require_open(self) -> Path:
        if self._staging is None:
            state = "closed" if self._record is not None else "not open"
            raise BundleClosed(
                f"bundle {self._name!r} is {state}: use 'with Bundle(ctx, name) as b:' or b.open()"
            )
        return self._staging

    def _require_not_closed(self) -> None:
        if self._record is not None:
            raise BundleClosed(
                f"bundle {self.name}@{self.uuid[:8]} is closed (immutable); make a new one"
            )

    # -- building -----------------------------------------------------------------------------
    def add_data(self, data: Any) -> Bundle:
        """Attach the bundle's data; a later call replaces an earlier one (as in Disdat)."""
        self._require_open()
        self._data = data
        return self

    def add_tags(self, tags: Mapping[str, Any]) -> Bundle:
        """Add or update tags: before the bundle is stored, or on a closed one in place."""
        values = bundle_tags(tags)
        if self._record is not None:
            self._record = operations.add_tags(self.workspace, self._record.uuid, values)
        else:
            self._tags.update(values)
        return self

    def add_params(self, params: Mapping[str, Any]) -> Bundle:
        """Record the parameters the bundle was made with (any JSON-able values)."""
        self._require_not_closed()
        if not isinstance(params, Mapping):
            raise InvalidInput(f"params must be a dict, not {type(params).__name__}")
        self._params.update(params)
        return self

    def add_dependency(self, bundle: Bundle | str, name: str | None = None) -> Bundle:
        """Record that ``bundle`` (a Bundle or a uuid) was used to make this one; the argument
        name defaults to the upstream bundle's name."""
        self._require_not_closed()
        if isinstance(bundle, Bundle):
            upstream_uuid, default_name = bundle.uuid, bundle.name
        else:
            record = operations.resolve(self.workspace, None, bundle, by_name=False)
            upstream_uuid, default_name = record.uuid, record.name
        self._dependencies.append(Dependency(upstream_uuid, "depends_on", name or default_name))
        return self

    def add_dependencies(
        self,
        bundles: Bundle | str | Sequence[Bundle | str],
        arg_names: str | Sequence[str] | None = None,
    ) -> Bundle:
        """Disdat's form: one bundle or a list, with argument names (default ``_arg_<i>``)."""
        items = [bundles] if isinstance(bundles, Bundle | str) else list(bundles)
        if arg_names is None:
            first = len(self._dependencies)
            names = [f"_arg_{first + index}" for index in range(len(items))]
        else:
            names = [arg_names] if isinstance(arg_names, str) else list(arg_names)
        if len(names) != len(items):
            raise InvalidInput(
                f"add_dependencies: {len(items)} bundle(s) but {len(names)} argument name(s)"
            )
        for item, arg_name in zip(items, names, strict=True):
            self.add_dependency(item, arg_name)
        return self

    def add_code_ref(self, code_ref: str) -> Bundle:
        """The code that made the bundle (e.g. ``package.module.function``)."""
        self._require_not_closed()
        self._code_extra["code_method"] = str(code_ref)
        return self

    def add_git_info(self, repo: str, commit: str, branch: str) -> Bundle:
        """Record the git repository, commit and branch (instead of the ones found here)."""
        self._require_not_closed()
        self._code_extra.update({"git_repo": repo, "git_commit": commit, "git_branch": branch})
        return self

    def add_timing(self, start_time: float, stop_time: float) -> Bundle:
        """When the processing started and stopped (epoch seconds; 0 = when opened/closed)."""
        self._require_not_closed()
        self._timing = (start_time or None, stop_time or None)
        return self

    def make_file(self, filename: str) -> FileTarget:
        """A file inside the bundle to write to; pass it to ``add_data`` to include it."""
        staging = self._require_open()
        relative = safe_bundle_path(filename)
        return FileTarget(staging / relative, relative)

    def get_file(self, filename: str) -> str:
        """Disdat's name: the path (a string) of a file inside the bundle, to write and then
        include in ``add_data``."""
        return self.make_file(filename).path

    def make_directory(self, dir_name: str) -> str:
        """A directory inside the bundle; everything written into it becomes part of it."""
        staging = self._require_open()
        if dir_name.rstrip("/") == str(staging):
            return str(staging)  # Disdat: the bundle's own directory gives itself back
        relative = safe_bundle_path(dir_name.strip("/"))
        path = staging / relative
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    get_directory = make_directory

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

    @property
    def local_dir(self) -> str | None:
        """The folder holding the bundle's files: its staging folder while open, its verified
        read-only view once closed, None before it is opened."""
        if self._staging is not None:
            return str(self._staging)
        if self._record is not None:
            return str(views.bundle_view(self.workspace, self._record))
        return None

    @property
    def remote_dir(self) -> None:
        """Always None: a remote holds blobs by content, not a folder per bundle."""
        return None

    # -- what it is (open or closed) --------------------------------------------------------
    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str:
        """The bundle's name; ``""`` while a new bundle has none yet (as in Disdat)."""
        return self._name or ""

    @name.setter
    def name(self, name: str) -> None:
        self._require_not_closed()
        self._name = check_bundle_name(name)

    @property
    def processing_name(self) -> str:
        if self._record is not None:
            return self._record.processing_name
        return self._processing_name or self.name

    @processing_name.setter
    def processing_name(self, processing_name: str) -> None:
        self._require_not_closed()
        self._processing_name = str(processing_name)

    def default_processing_name(self) -> str:
        """The processing name used when none is given: the bundle's name (Disdat derives one
        from code reference, params and dependencies; see docs/porting.md)."""
        return self.processing_name

    @property
    def owner(self) -> str:
        return self._record.owner if self._record is not None else self._owner

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._record.tags if self._record else self._tags)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._record.params if self._record else self._params)

    @property
    def data(self) -> Any:
        """Closed: the data as it was saved (files as paths in a read-only, verified view).
        Open: the data attached so far (None when none), as Disdat's ``data``."""
        if self._record is None:
            return None if self._data is _UNSET else self._data
        return operations.load_data(self.workspace, self._record)

    @property
    def dependencies(self) -> dict[str, tuple[str, str]]:
        """``{argument name: (processing name, uuid)}`` of the bundles this one was made from
        (the processing name is ``""`` for an upstream bundle not in this catalog)."""
        found = self._record.dependencies if self._record else self._dependencies
        return {
            d.arg_name or f"_arg_{index}": (self._processing_name_of(d.uuid), d.uuid)
            for index, d in enumerate(found)
        }

    def __repr__(self) -> str:
        state = "closed" if self._record else "open" if self._staging else "new"
        return f"<Bundle {self.local_context}/{self._name}@{self._uuid[:8]} {state}>"
