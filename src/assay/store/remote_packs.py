"""Packs on a remote: many small blobs in one object, found through an immutable index.

Under the remote URL, beside ``objects/`` and shared by every context::

    packs/pack-<UTC time>-<random>.pack   the local pack format (``assay.store.packs``):
                                          ``ASSAYPK1`` + records framed as
                                          ``b"blob" + 32-byte hash + 8-byte length + bytes``
    packs/pack-<UTC time>-<random>.idx    ``ASSAYIX1`` + sorted ``(hash, offset, length)``
                                          entries + the BLAKE3 hash of those entries

A push sends the small blobs the remote lacks as packs of ``RemoteConfig.pack_bytes``
(``ASSAY_REMOTE_PACK_BYTES``, 32 MiB; a push's packs are of equal size); each pack object is created (no-clobber, under a new random name) and complete before
its index is, so a reader that sees an index always finds its pack. Readers know a pack only by
its index: a pack without one (a push killed between the two) is ignored, and its blobs are
sent again by the next push. Nothing is rewritten, so two machines pushing at once each add
their own packs; a blob in two packs is harmless (either copy serves).

The remote's blobs are the loose ``objects/`` plus the entries of every index. Indexes are
immutable, so each machine keeps the ones it has read under
``$ASSAY_HOME/remotes/<hash of the URL>/packs/``: knowing the remote's packs costs one listing
of ``packs/`` plus the indexes not seen before. An index that fails its checksum is rebuilt by
scanning its pack (the records are self-framed). A pull reads byte ranges: the blobs wanted
from one pack are coalesced into spans of at most ``SPAN_BYTES`` (gaps under ``GAP_BYTES``
are read through), one ranged GET each, on the remote's threads; every blob is hashed before it
is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from assay.core.errors import BlobCorrupted, BlobMissing, RemoteObjectCorrupted, StorageError
from assay.core.hashing import hash_bytes
from assay.store.blobstore import BlobStore
from assay.store.packs import (
    PACK_HEADER,
    PACK_MIN_BLOBS,
    RECORD,
    PackWriter,
    decode_index,
    encode_index,
    pack_record,
    scan_records,
)
from assay.store.remote_backends import RemoteConfig

T = TypeVar("T")
R = TypeVar("R")


class _Remote(Protocol):
    """What packs need of ``assay.store.remote.RemoteStore`` (which holds a ``RemotePacks``)."""

    url: str
    config: RemoteConfig

    def describe(self) -> str: ...
    def list_files(self, prefix: str) -> list[str]: ...
    def read(self, key: str) -> bytes | None: ...
    def read_many(self, keys: Sequence[str]) -> dict[str, bytes | None]: ...
    def read_range(self, key: str, start: int, length: int) -> bytes: ...
    def write_new(self, key: str, data: bytes) -> bool: ...
    def parallel(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


PACKS = "packs"
#: Packs built but not yet uploaded, at most (bounds the memory a push holds).
PACKS_IN_FLIGHT = 4
#: A pull reads at most this much in one ranged GET ...
SPAN_BYTES = 8 << 20
#: ... and reads through gaps (blobs it does not want) smaller than this.
GAP_BYTES = 256 << 10

Added = Callable[[int], None]  # bytes done, for a progress meter


@dataclass(frozen=True)
class RemoteLocation:
    pack: str  # e.g. pack-20261126T160000123456Z-0123456789abcdef (no suffix)
    offset: int
    length: int


@dataclass(frozen=True)
class Span:
    """One ranged read of a pack and the blobs inside it."""

    pack: str
    start: int
    length: int
    blobs: tuple[tuple[str, int, int], ...]  # (hash, offset, length)


def pack_key(name: str) -> str:
    return f"{PACKS}/{name}.pack"


def index_key(name: str) -> str:
    return f"{PACKS}/{name}.idx"


def new_pack_name() -> str:
    moment = datetime.now(UTC)
    return f"pack-{moment:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:16]}"


def plan_spans(wanted: Mapping[str, RemoteLocation]) -> list[Span]:
    """Ranged reads covering ``wanted``: per pack, blobs in offset order, joined while the gap
    is under ``GAP_BYTES`` and the span stays within ``SPAN_BYTES`` (one blob: its bytes)."""
    by_pack: dict[str, list[tuple[int, int, str]]] = {}
    for blob_hash, location in wanted.items():
        by_pack.setdefault(location.pack, []).append((location.offset, location.length, blob_hash))
    spans: list[Span] = []
    for pack, items in sorted(by_pack.items()):
        items.sort()
        current: list[tuple[str, int, int]] = []
        start = end = 0
        for offset, length, blob_hash in items:
            if current and (offset - end > GAP_BYTES or offset + length - start > SPAN_BYTES):
                spans.append(Span(pack, start, end - start, tuple(current)))
                current = []
            if not current:
                start = offset
            current.append((blob_hash, offset, length))
            end = max(end, offset + length) if len(current) > 1 else offset + length
        if current:
            spans.append(Span(pack, start, end - start, tuple(current)))
    return spans


class RemotePacks:
    """What the remote's pack indexes say (hash -> pack, offset, length), refreshed on demand."""

    def __init__(self, remote: _Remote, cache_root: Path | None) -> None:
        self.remote = remote
        self.cache: Path | None = None
        if cache_root is not None:
            digest = hashlib.sha256(remote.url.encode()).hexdigest()[:24]
            self.cache = cache_root / digest / PACKS
        self._where: dict[str, RemoteLocation] = {}
        self._loaded: set[str] = set()
        self._lock = threading.Lock()

    # -- knowing ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Load the indexes of packs new since the last look (one listing of ``packs/``)."""
        names = self.remote.list_files(PACKS)
        packs = {n[: -len(".pack")] for n in names if n.endswith(".pack")}
        indexed = {n[: -len(".idx")] for n in names if n.endswith(".idx")}
        new = sorted((packs & indexed) - self._loaded)
        if not new:
            return
        found: dict[str, dict[str, tuple[int, int]] | None] = {n: self._cached(n) for n in new}
        fetch = [n for n in new if found[n] is None]
        if fetch:
            fetched = self.remote.read_many([index_key(n) for n in fetch])
            for name in fetch:
                entries = decode_index(fetched[index_key(name)] or b"")
                if entries is None:
                    entries = self._scan(name)  # damaged or truncated index: read the pack
                if entries is None:
                    continue
                self._cache_put(name, entries)
                found[name] = entries
        with self._lock:
            for name in new:
                entries = found[name]
                if entries is None:
                    continue
                for blob_hash, (offset, length) in entries.items():
                    self._where.setdefault(blob_hash, RemoteLocation(name, offset, length))
                self._loaded.add(name)

    def _scan(self, name: str) -> dict[str, tuple[int, int]] | None:
        """The records of a pack whose index is damaged (None when the pack is gone)."""
        data = self.remote.read(pack_key(name))
        if data is None:
            return None
        entries, _end = scan_records(data)
        return entries

    def _cached(self, name: str) -> dict[str, tuple[int, int]] | None:
        if self.cache is None:
            return None
        try:
            return decode_index((self.cache / f"{name}.idx").read_bytes())
        except OSError:
            return None

    def _cache_put(self, name: str, entries: dict[str, tuple[int, int]]) -> None:
        if self.cache is None:
            return
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            temp = self.cache / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            temp.write_bytes(encode_index(entries))
            os.replace(temp, self.cache / f"{name}.idx")
        except OSError:
            pass  # only a cache: the index is read from the remote next time

    def locate(self, blob_hash: str) -> RemoteLocation | None:
        return self._where.get(blob_hash)

    def packed(self, blob_hashes: set[str]) -> set[str]:
        return {h for h in blob_hashes if h in self._where}

    # -- pushing ------------------------------------------------------------------------------
    def upload(self, store: BlobStore, blobs: Mapping[str, int], added: Added) -> None:
        """Send ``blobs`` (small, in the local store) as new packs, each followed by its index.
        Every blob is hashed as it is read, so a corrupted local blob is never spread. Packs
        are built on this thread while up to ``PACKS_IN_FLIGHT`` upload on others."""
        total = sum(RECORD.size + size for size in blobs.values())
        pack_bytes = self.remote.config.pack_bytes
        target = -(-total // max(1, -(-total // pack_bytes)))
        slots = threading.Semaphore(PACKS_IN_FLIGHT)
        futures: list[Future[None]] = []
        with ThreadPoolExecutor(max_workers=PACKS_IN_FLIGHT) as pool:
            for data, entries, size in _build_packs(store, blobs, target):
                slots.acquire()
                if any(f.done() and f.exception() is not None for f in futures):
                    break
                future = pool.submit(self._send, data, entries, size, added)
                future.add_done_callback(lambda _f: slots.release())
                futures.append(future)
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error

    def _send(
        self, data: bytes, entries: dict[str, tuple[int, int]], size: int, added: Added
    ) -> None:
        name = new_pack_name()
        if not self.remote.write_new(pack_key(name), data):
            raise StorageError(f"remote pack {pack_key(name)} exists already (a name collision)")
        added(size)
        # Only now that the pack is complete: a reader never sees an index without its pack.
        self.remote.write_new(index_key(name), encode_index(entries))
        self._cache_put(name, entries)
        with self._lock:
            for blob_hash, (offset, length) in entries.items():
                self._where.setdefault(blob_hash, RemoteLocation(name, offset, length))
            self._loaded.add(name)

    # -- pulling ------------------------------------------------------------------------------
    def download(
        self, store: BlobStore, wanted: Mapping[str, RemoteLocation], added: Added
    ) -> None:
        """Read ``wanted`` by ranges, hash each blob, store the good ones (into a local pack
        when there are ``PACK_MIN_BLOBS`` or more and the store packs, else loose). A blob
        that does not match its hash is refused; the others are stored all the same, then
        ``RemoteObjectCorrupted`` names the refused ones. The caller holds
        ``store.writing()``."""
        packing = store.pack_threshold > 0 and len(wanted) >= PACK_MIN_BLOBS
        with _sink(store, packing) as keep:
            refused: list[tuple[str, str]] = []
            missing: list[str] = []
            lock = threading.Lock()

            def fetch(span: Span) -> None:
                try:
                    data = self.remote.read_range(pack_key(span.pack), span.start, span.length)
                except FileNotFoundError:
                    with lock:
                        missing.append(pack_key(span.pack))
                    return
                for blob_hash, offset, length in span.blobs:
                    blob = data[offset - span.start : offset - span.start + length]
                    if len(blob) != length or hash_bytes(blob) != blob_hash:
                        with lock:
                            refused.append((blob_hash, pack_key(span.pack)))
                        continue
                    keep(blob_hash, blob)
                    added(length)

            self.remote.parallel(fetch, plan_spans(wanted))
        if missing:
            raise BlobMissing(
                f"remote pack {sorted(missing)[0]} is missing from {self.remote.describe()} "
                f"({len(missing)} range(s) unreadable); the other blobs were stored"
            )
        if refused:
            refused.sort()
            names = ", ".join(f"{h[:12]} in {key}" for h, key in refused[:3])
            more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
            raise RemoteObjectCorrupted(
                f"{len(refused)} blob(s) read from remote {self.remote.describe()} are "
                f"corrupted (their content does not match their hash): {names}{more}; they "
                f"were refused, the other {len(wanted) - len(refused)} blob(s) were stored"
            )


def _build_packs(
    store: BlobStore, blobs: Mapping[str, int], target: int
) -> Iterator[tuple[bytes, dict[str, tuple[int, int]], int]]:
    """Packs of about ``target`` bytes: (bytes, entries, blob bytes), in ``blobs``' order."""
    buffer = bytearray(PACK_HEADER)
    entries: dict[str, tuple[int, int]] = {}
    size = 0
    with _LocalReader(store) as read:
        for blob_hash in blobs:
            data = read(blob_hash)
            buffer += pack_record(blob_hash, data)
            entries[blob_hash] = (len(buffer), len(data))
            buffer += data
            size += len(data)
            if len(buffer) >= target:
                yield bytes(buffer), entries, size
                buffer, entries, size = bytearray(PACK_HEADER), {}, 0
    if entries:
        yield bytes(buffer), entries, size


class _LocalReader:
    """Reads local blobs for a push, verified: packed ones through one open descriptor per
    local pack (10,000 small blobs are 10,000 ``pread``s, not 10,000 path walks and opens)."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._fds: dict[str, int] = {}

    def __enter__(self) -> Callable[[str], bytes]:
        self.store.packs.refresh()
        return self.read

    def __exit__(self, *_exc: object) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def read(self, blob_hash: str) -> bytes:
        location = self.store.packs.locate(blob_hash, refresh=False)
        if location is not None:
            fd = self._fds.get(location.pack)
            if fd is None:
                path = self.store.packs.root / location.pack
                with contextlib.suppress(FileNotFoundError):  # repacked meanwhile: below
                    fd = self._fds[location.pack] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            if fd is not None:
                data = os.pread(fd, location.length, location.offset)
                if hash_bytes(data) == blob_hash:
                    return data
        # Loose, or the packed copy did not match: the store's own verified read decides.
        try:
            return self.store.read_verified(blob_hash)
        except BlobCorrupted:
            raise BlobCorrupted(
                f"local blob {blob_hash} is corrupted (its content no longer matches); nothing "
                "of it was pushed; run 'assay verify' to list affected bundles"
            ) from None
        except BlobMissing:
            raise BlobMissing(f"blob {blob_hash} is missing from the local store") from None


@contextlib.contextmanager
def _sink(store: BlobStore, packing: bool) -> Iterator[Callable[[str, bytes], None]]:
    """Where verified blobs go: this process's own local pack, or loose blobs."""
    if not packing:

        def keep_loose(_blob_hash: str, data: bytes) -> None:
            store.put_bytes(data)

        yield keep_loose
        return
    writer: PackWriter = store.pack_writer()
    lock = threading.Lock()

    def keep(blob_hash: str, data: bytes) -> None:
        with lock:
            writer.add(blob_hash, data)

    try:
        yield keep
    except BaseException:
        writer.finish()  # what it holds is verified: index it (the failure was elsewhere)
        raise
    writer.finish()
