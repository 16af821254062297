"""One remote context: its bundle records and its append-only index.

Under ``<remote url>/contexts/<name>/``::

    bundles/<uuid>.json                    one immutable record per bundle (BundleRecord + files)
    index/<UTC time>-<random>.json         append-only segments: the bundles one push added
                                           ({"kind": "add"}) or one removal took away
                                           ({"kind": "remove"}, a tombstone)

A bundle is listed by the remote once a segment names it, and segments are written last, so a
remote never lists a bundle whose record or blobs are incomplete. Nobody rewrites a shared
file: two machines pushing at once each add their own segment and lose nothing. Segments are
immutable, so a reader keeps the ones it has read in a local cache and fetches only new names:
reading the index costs one listing of ``index/`` plus the segments it has not seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid as uuid_module
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assay.core.errors import RemoteObjectCorrupted
from assay.core.hashing import canonical_json, tree_hash
from assay.core.records import BundleRecord, Dependency, FileEntry
from assay.core.remote_records import RemoteEntry
from assay.store.remote import RemoteStore

RECORD_FORMAT = "assay.bundle/1"
SEGMENT_FORMAT = "assay.index/1"


@dataclass
class RemoteIndex:
    """The bundles a remote context lists (live, oldest push first) and the removed uuids."""

    entries: dict[str, RemoteEntry] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    segments: int = 0


def segment_name(now: float | None = None) -> str:
    """``<UTC time to the microsecond>-<random>.json``: sorts by time; never collides."""
    moment = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return f"{moment:%Y%m%dT%H%M%S%f}Z-{uuid_module.uuid4().hex[:12]}.json"


# -- records --------------------------------------------------------------------------------
def record_document(record: BundleRecord, files: list[FileEntry]) -> dict[str, Any]:
    return {
        "format": RECORD_FORMAT,
        "uuid": record.uuid,
        "name": record.name,
        "processing_name": record.processing_name,
        "owner": record.owner,
        "created": record.created,
        "content_hash": record.content_hash,
        "presentation": record.presentation,
        "data": record.data,
        "params": record.params,
        "code_version": record.code_version,
        "start_time": record.start_time,
        "stop_time": record.stop_time,
        "file_count": record.file_count,
        "total_size": record.total_size,
        "tags": dict(record.tags),
        "dependencies": [
            {"uuid": d.uuid, "kind": d.kind, "arg_name": d.arg_name} for d in record.dependencies
        ],
        "files": [[f.path, f.blob_hash, f.size] for f in files],
        "pushed": time.time(),
    }


def record_from_document(
    raw: bytes, context: str, where: str
) -> tuple[BundleRecord, list[FileEntry]]:
    """The record and files in ``raw``, checked: its content hash must match its files and
    data, so a corrupted or truncated record is refused."""

    def corrupted(why: str) -> RemoteObjectCorrupted:
        return RemoteObjectCorrupted(
            f"remote bundle record {where} is corrupted or truncated ({why}); it was refused "
            "and nothing local was changed"
        )

    try:
        doc = json.loads(raw)
        if doc.get("format") != RECORD_FORMAT:
            raise corrupted(f"unknown format {doc.get('format')!r}")
        files = [FileEntry(str(p), str(h), int(s)) for p, h, s in doc["files"]]
        record = BundleRecord(
            uuid=str(doc["uuid"]),
            context=context,
            name=str(doc["name"]),
            processing_name=str(doc["processing_name"]),
            owner=str(doc["owner"]),
            created=float(doc["created"]),
            committed=True,
            content_hash=str(doc["content_hash"]),
            presentation=str(doc["presentation"]),
            data=doc["data"],
            params=dict(doc["params"]),
            code_version=dict(doc["code_version"]),
            start_time=doc["start_time"],
            stop_time=doc["stop_time"],
            file_count=int(doc["file_count"]),
            total_size=int(doc["total_size"]),
            tags={str(k): str(v) for k, v in doc["tags"].items()},
            dependencies=tuple(
                Dependency(str(d["uuid"]), str(d["kind"]), str(d["arg_name"]))
                for d in doc["dependencies"]
            ),
        )
    except RemoteObjectCorrupted:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise corrupted(f"{type(exc).__name__}: {exc}") from None
    actual = tree_hash(((f.path, f.blob_hash, f.size) for f in files), record.data)
    if actual != record.content_hash:
        raise corrupted("its content hash does not match its files and data")
    if len(files) != record.file_count or sum(f.size for f in files) != record.total_size:
        raise corrupted("its file count or size does not match its files")
    return record, files


def entry_of(record: BundleRecord) -> RemoteEntry:
    return RemoteEntry(
        record.uuid,
        record.name,
        record.created,
        record.content_hash,
        dict(record.tags),
        record.file_count,
        record.total_size,
    )


def _entry_document(entry: RemoteEntry) -> dict[str, Any]:
    return {
        "uuid": entry.uuid,
        "name": entry.name,
        "created": entry.created,
        "content_hash": entry.content_hash,
        "tags": entry.tags,
        "file_count": entry.file_count,
        "total_size": entry.total_size,
    }


def _entry_from(doc: dict[str, Any]) -> RemoteEntry:
    return RemoteEntry(
        str(doc["uuid"]),
        str(doc["name"]),
        float(doc["created"]),
        str(doc["content_hash"]),
        {str(k): str(v) for k, v in doc.get("tags", {}).items()},
        int(doc.get("file_count", 0)),
        int(doc.get("total_size", 0)),
    )


# -- one remote context ---------------------------------------------------------------------
class RemoteContext:
    """Records and index segments of one context on one remote."""

    def __init__(self, store: RemoteStore, name: str, cache_root: Path) -> None:
        self.store = store
        self.name = name
        self.prefix = f"contexts/{name}"
        location = f"{store.url}/{self.prefix}"
        digest = hashlib.sha256(location.encode()).hexdigest()[:24]
        self.cache = cache_root / digest / "index"

    @property
    def location(self) -> str:
        return f"{self.store.url}/{self.prefix}"

    def record_key(self, uuid: str) -> str:
        return f"{self.prefix}/bundles/{uuid}.json"

    # -- records ------------------------------------------------------------------------------
    def write_record(self, record: BundleRecord, files: list[FileEntry]) -> bool:
        """Write the record unless one exists (the remote's copy is immutable); False then."""
        data = canonical_json(record_document(record, files)).encode()
        return self.store.write_new(self.record_key(record.uuid), data)

    def read_records(
        self, uuids: list[str], context: str
    ) -> dict[str, tuple[BundleRecord, list[FileEntry]] | None]:
        """Records by uuid (None where the remote has none), each checked."""
        raw = self.store.read_many([self.record_key(u) for u in uuids])
        found: dict[str, tuple[BundleRecord, list[FileEntry]] | None] = {}
        for uuid in uuids:
            key = self.record_key(uuid)
            data = raw[key]
            if data is None:
                found[uuid] = None
                continue
            record, files = record_from_document(data, context, f"{self.store.url}/{key}")
            if record.uuid != uuid:
                raise RemoteObjectCorrupted(
                    f"remote bundle record {self.store.url}/{key} names bundle {record.uuid}; "
                    "it was refused and nothing local was changed"
                )
            found[uuid] = (record, files)
        return found

    def record_uuids(self) -> list[str]:
        return [
            name[: -len(".json")]
            for name in self.store.list_files(f"{self.prefix}/bundles")
            if name.endswith(".json")
        ]

    def delete_records(self, uuids: list[str]) -> None:
        self.store.delete([self.record_key(u) for u in uuids])

    # -- index --------------------------------------------------------------------------------
    def add_segment(self, entries: list[RemoteEntry]) -> str:
        return self._write_segment(
            {"kind": "add", "bundles": [_entry_document(e) for e in entries]}
        )

    def remove_segment(self, uuids: list[str]) -> str:
        return self._write_segment({"kind": "remove", "uuids": sorted(uuids)})

    def _write_segment(self, body: dict[str, Any]) -> str:
        document = {"format": SEGMENT_FORMAT, "written": time.time(), **body}
        data = canonical_json(document).encode()
        while True:
            name = segment_name()
            if self.store.write_new(f"{self.prefix}/index/{name}", data):
                self._cache_put(name, data)
                return name

    def index(self) -> RemoteIndex:
        """Read the index: one listing, plus the segments not in the local cache."""
        names = [n for n in self.store.list_files(f"{self.prefix}/index") if n.endswith(".json")]
        documents: dict[str, Any] = {}
        missing: list[str] = []
        for name in names:
            cached = self._cache_get(name)
            if cached is None:
                missing.append(name)
            else:
                documents[name] = cached
        if missing:
            fetched = self.store.read_many([f"{self.prefix}/index/{n}" for n in missing])
            for name in missing:
                data = fetched[f"{self.prefix}/index/{name}"]
                parsed = _parse_segment(data)
                if parsed is None:
                    continue  # vanished, or still being written (no-link fallback): next time
                documents[name] = parsed
                assert data is not None
                self._cache_put(name, data)
        index = RemoteIndex(segments=len(documents))
        for name in sorted(documents):
            document = documents[name]
            if document["kind"] == "add":
                for item in document["bundles"]:
                    entry = _entry_from(item)
                    index.entries[entry.uuid] = entry
                    index.removed.discard(entry.uuid)
            elif document["kind"] == "remove":
                for uuid in document["uuids"]:
                    index.entries.pop(str(uuid), None)
                    index.removed.add(str(uuid))
        return index

    def _cache_get(self, name: str) -> Any:
        try:
            return _parse_segment((self.cache / name).read_bytes())
        except OSError:
            return None

    def _cache_put(self, name: str, data: bytes) -> None:
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            temp = self.cache / f".{name}.{os.getpid()}.{uuid_module.uuid4().hex[:8]}"
            temp.write_bytes(data)
            os.replace(temp, self.cache / name)
        except OSError:
            pass  # only a cache: the segment is read from the remote next time


def _parse_segment(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("format") != SEGMENT_FORMAT:
        return None
    if document.get("kind") == "add" and isinstance(document.get("bundles"), list):
        return document
    if document.get("kind") == "remove" and isinstance(document.get("uuids"), list):
        return document
    return None


def as_local(record: BundleRecord, context: str) -> BundleRecord:
    return replace(record, context=context, committed=True)
