"""Plain records of the remote side: bindings, index entries and what a transfer did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RemoteBinding:
    """A local context bound to context ``remote_context`` of the remote at ``url``."""

    context: str
    remote_context: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str:
        """Where the remote context lives: the key of its ``remote_bundles`` rows."""
        return f"{self.url}/contexts/{self.remote_context}"

    def __str__(self) -> str:  # Disdat's ``<remote context>@<remote url>``
        return f"{self.remote_context}@{self.url}"


@dataclass(frozen=True)
class RemoteEntry:
    """One bundle as a remote context's index lists it."""

    uuid: str
    name: str
    created: float
    content_hash: str
    tags: dict[str, str] = field(default_factory=dict)
    file_count: int = 0
    total_size: int = 0


@dataclass(frozen=True)
class PushReport:
    remote: str
    pushed: tuple[str, ...]  # uuids newly listed on the remote by this push
    already_there: tuple[str, ...]  # uuids the remote already listed
    skipped_uncommitted: int
    blobs_uploaded: int
    bytes_uploaded: int
    blobs_already_there: int


@dataclass(frozen=True)
class PullReport:
    remote: str
    pulled: tuple[str, ...]  # uuids new to this catalog
    already_here: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (uuid, why)
    localized: tuple[str, ...]
    bytes_downloaded: int


@dataclass(frozen=True)
class LocalizeReport:
    uuid: str
    blobs_downloaded: int
    bytes_downloaded: int


@dataclass(frozen=True)
class DelocalizeReport:
    uuid: str
    blobs_removed: int
    bytes_freed: int
    blobs_kept: int  # shared with a bundle that is only local


@dataclass(frozen=True)
class RemoteRemoval:
    remote: str
    removed: tuple[RemoteEntry, ...]
    blobs_deleted: int
    blobs_kept: int  # still referenced by another remote bundle record
