"""What a stored (closed) bundle offers: its record, lineage, files, commit, removal and remotes.

``assay.bundle.Bundle`` builds on this: the making of a bundle lives there, the reading of a
stored one here. Method names follow Disdat 1.2's ``api.Bundle`` (``cat``, ``commit``, ``rm``,
``rmr``, ``push``, ``pull``, ``localize``, ``delocalize``, ``code_ref``, ``timing``,
``git_info``, ``is_presentable``, ``creation_date``); where ours differs it says so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from assay.bundles import operations, remotes
from assay.bundles.workspace import Workspace
from assay.core.errors import BundleClosed, BundleNotFound
from assay.core.records import BundleRecord, FileEntry
from assay.core.remote_records import RemoteRemoval

#: Hex digits of each hash in Disdat's default processing name.
_PROCESSING_HASH_DIGITS = 10


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


class StoredBundle:
    """The reading side of ``Bundle``; subclasses provide the record and the workspace."""

    _record: BundleRecord | None
    name: str

    @property
    def workspace(self) -> Workspace:
        raise NotImplementedError

    def _require_record(self) -> BundleRecord:
        if self._record is None:
            raise BundleClosed(f"bundle {self.name!r} has not been closed (stored) yet")
        return self._record

    def _processing_name_of(self, uuid: str) -> str:
        try:
            return operations.resolve(self.workspace, None, uuid, by_name=False).processing_name
        except BundleNotFound:
            return ""  # an upstream bundle from elsewhere: the uuid still names it

    @property
    def record(self) -> BundleRecord:
        return self._require_record()

    @property
    def creation_date(self) -> datetime:
        """When it was stored, as an aware UTC datetime (Disdat: epoch seconds)."""
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
    def is_presentable(self) -> bool:
        """True once stored: every stored bundle gives its data back as it was saved."""
        return self._record is not None

    @property
    def code_ref(self) -> str:
        """The code reference given with ``add_code_ref`` / ``code_method`` (else ``""``)."""
        return str(self._require_record().code_version.get("code_method", ""))

    @property
    def timing(self) -> tuple[float | None, float | None]:
        record = self._require_record()
        return record.start_time, record.stop_time

    @property
    def git_info(self) -> tuple[str, str, str]:
        """``(repo, commit, branch)``, each ``""`` when unknown."""
        version = self._require_record().code_version
        return (
            str(version.get("git_repo") or ""),
            str(version.get("git_commit") or ""),
            str(version.get("git_branch") or ""),
        )

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

    def cat(self) -> Any:
        """The data as it was saved."""
        return operations.load_data(self.workspace, self._require_record())

    @property
    def files(self) -> list[FileEntry]:
        return operations.files_of(self.workspace, self._require_record())

    def commit(self) -> Self:
        record = self._require_record()
        self._record = operations.commit(self.workspace, record.context, uuid=record.uuid)
        return self

    def rm(self, force: bool = False) -> Self:
        """Remove this bundle (this uuid only) from its context; refuses while others depend
        on it, unless ``force``."""
        record = self._require_record()
        operations.remove(self.workspace, record.context, uuid=record.uuid, force=force)
        return self

    def rmr(self, force: bool = False) -> RemoteRemoval:
        """Remove this bundle from its context's remote only (``api.rm_remote(uuid=...)``)."""
        record = self._require_record()
        return remotes.remove_remote(self.workspace, record.context, uuid=record.uuid, force=force)

    # -- remotes ------------------------------------------------------------------------------
    def push(self, delocalize: bool = False) -> Self:
        """Push this (committed) bundle to its context's remote; then free its local file
        data if ``delocalize``."""
        record = self._require_record()
        remotes.push(self.workspace, record.context, uuid=record.uuid)
        if delocalize:
            remotes.delocalize_bundle(self.workspace, record.context, uuid=record.uuid)
        return self

    def pull(self, localize: bool = False) -> Self:
        """Pull this bundle's record again from the remote, and its file data if ``localize``."""
        record = self._require_record()
        remotes.pull(self.workspace, record.context, uuid=record.uuid, localize=localize)
        return self

    def localize(self, path: str | None = None) -> Self:
        """Download this bundle's file data (all of it; Disdat's ``path`` is accepted and the
        whole bundle is fetched, verified by hash)."""
        del path
        record = self._require_record()
        remotes.localize_bundle(self.workspace, record.context, uuid=record.uuid)
        return self

    def delocalize(self, path: str | None = None) -> Self:
        """Free this bundle's local file data (all of it); it must be safely on the remote."""
        del path
        record = self._require_record()
        remotes.delocalize_bundle(self.workspace, record.context, uuid=record.uuid)
        return self

    @property
    def localized(self) -> bool:
        """True when every file of the bundle is in the local store."""
        return remotes.is_localized(self.workspace, self._require_record())

    @staticmethod
    def calc_default_processing_name(
        code_ref: str, params: Mapping[str, Any], dep_proc_ids: Mapping[str, str]
    ) -> str:
        """Disdat's processing name for code, params and upstream processing names:
        ``<code_ref>_<params hash>_<dependencies hash>`` (md5 of the values sorted by key, 10
        hex digits each). Assay does not apply it by default (see docs/porting.md)."""

        def sorted_md5(values: Mapping[str, Any]) -> str:
            joined = ".".join(str(values[key]) for key in sorted(values))
            digest = hashlib.md5(joined.encode("utf-8"), usedforsecurity=False).hexdigest()
            return digest[:_PROCESSING_HASH_DIGITS]

        return f"{code_ref}_{sorted_md5(params)}_{sorted_md5(dep_proc_ids)}"
