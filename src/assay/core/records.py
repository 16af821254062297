"""Plain records the bundle domain hands out: frozen dataclasses, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileEntry:
    """One file of a bundle: its path inside the bundle, blob hash and size."""

    path: str
    blob_hash: str
    size: int


@dataclass(frozen=True)
class Dependency:
    """A typed provenance edge from a bundle to an upstream bundle."""

    uuid: str
    kind: str = "depends_on"
    arg_name: str = ""


@dataclass(frozen=True)
class BundleRecord:
    uuid: str
    context: str
    name: str
    processing_name: str
    owner: str
    created: float
    committed: bool
    content_hash: str
    presentation: str
    data: Any  # the encoded data document (JSON value)
    params: dict[str, Any]
    code_version: dict[str, Any]
    start_time: float | None
    stop_time: float | None
    file_count: int
    total_size: int
    tags: dict[str, str] = field(default_factory=dict)
    dependencies: tuple[Dependency, ...] = ()


@dataclass(frozen=True)
class ContextInfo:
    name: str
    created: float
    bundle_count: int
    committed_count: int
    remote: str | None = None


@dataclass(frozen=True)
class LineageNode:
    """One bundle reached while walking lineage, ``depth`` edges from the start."""

    uuid: str
    depth: int
    direction: str  # "upstream" or "downstream"
    via_uuid: str | None  # the bundle it was reached from
    arg_name: str
    kind: str
    record: BundleRecord | None  # None when the bundle was removed (forced) or is elsewhere

    @property
    def missing(self) -> bool:
        return self.record is None


@dataclass(frozen=True)
class VerifyProblem:
    bundle_uuid: str
    bundle_name: str
    context: str
    path: str
    blob_hash: str
    problem: str  # "missing", "corrupted" (now quarantined) or "quarantined" (found so before)


@dataclass(frozen=True)
class GcReport:
    blobs_removed: int
    bytes_freed: int
    temp_files_removed: int
    views_removed: int
    blobs_kept_in_grace: int
    staging_removed: int = 0
    #: Blobs in the store when gc ran, and whether it only listed what it would remove.
    blobs_total: int = 0
    dry_run: bool = False
    #: ``(blob hash, size)`` removed (or, in a dry run, that would be removed).
    blobs: tuple[tuple[str, int], ...] = ()
    temp_files: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    staging: tuple[str, ...] = ()


@dataclass(frozen=True)
class RepairReport:
    """What ``verify --repair`` restored from remotes, and what stays damaged."""

    restored: tuple[str, ...]  # blob hashes now intact again
    remaining: tuple[VerifyProblem, ...]  # problems no remote could fix
