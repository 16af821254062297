"""Pack files: many small blobs appended to one file, found through an index.

The design git, restic and kopia share, written for Assay. A pack is
``packs/pack-<pid>-<random>.pack``: an 8-byte header, then records, each framed as
``b"blob" + 32-byte raw hash + 8-byte length + bytes``, so the index can always be rebuilt by
reading the pack. A writer is one thread of one process with its own pack (two processes
adding at once never share a file nor wait on each other); it appends in large sequential
writes and, when the add ends, writes ``pack-....idx``: the sorted ``(hash, offset, length)``
entries followed by the BLAKE3 hash of the entries, written to a temp name and renamed.

A pack without an index is unfinished: either a writer is still adding (its records are not
referenced by any committed bundle yet) or it was killed. Readers scan such a pack's complete
records; ``gc`` (which runs when no add is in progress) trims the partial tail of a killed
writer and writes the index. A truncated or damaged index fails its checksum and is rebuilt by
scanning. Blobs removed from a pack (unreferenced, or quarantined as corrupted) are listed in
``packs/dead`` (``<pack> <hash>`` lines); ``gc`` rewrites packs whose live fraction is low.
Every read is verified against the blob's hash by the caller.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from assay.core.hashing import hash_bytes

PACK_HEADER = b"ASSAYPK1"
RECORD = struct.Struct(">4s32sQ")
RECORD_TAG = b"blob"
IDX_HEADER = b"ASSAYIX1"
IDX_ENTRY = struct.Struct(">32sQQ")
MAX_PACK_BYTES = 64 << 20
#: Fewer small blobs than this stay loose (a pack, and its index every reader loads, per one
#: or two blobs would cost more than it saves); the same rule as ``bundles.ingest``'s adds.
PACK_MIN_BLOBS = 16
_WRITE_CHUNK = 8 << 20


@dataclass(frozen=True)
class Location:
    pack: str  # file name, e.g. pack-123-abcd.pack
    offset: int  # where the blob's bytes start
    length: int


def encode_index(entries: dict[str, tuple[int, int]]) -> bytes:
    body = b"".join(
        IDX_ENTRY.pack(bytes.fromhex(h), offset, length)
        for h, (offset, length) in sorted(entries.items())
    )
    return IDX_HEADER + body + bytes.fromhex(hash_bytes(body))


def decode_index(data: bytes) -> dict[str, tuple[int, int]] | None:
    """The entries of an index file, or None when it is truncated or damaged."""
    if len(data) < len(IDX_HEADER) + 32 or not data.startswith(IDX_HEADER):
        return None
    body, checksum = data[len(IDX_HEADER) : -32], data[-32:]
    if len(body) % IDX_ENTRY.size or bytes.fromhex(hash_bytes(body)) != checksum:
        return None
    return {raw.hex(): (offset, length) for raw, offset, length in IDX_ENTRY.iter_unpack(body)}


def scan_pack(path: Path, start: int = 0) -> tuple[dict[str, tuple[int, int]], int]:
    """The complete records of a pack from ``start`` (0: the beginning) and where the last
    complete record ends. A partial record (a killed writer's tail) ends the scan."""
    with open(path, "rb") as handle:
        data = handle.read()
    return scan_records(data, start)


def scan_records(data: bytes, start: int = 0) -> tuple[dict[str, tuple[int, int]], int]:
    """``scan_pack`` over a pack's bytes (a local file's, or a remote pack object's)."""
    entries: dict[str, tuple[int, int]] = {}
    if not data.startswith(PACK_HEADER):
        return entries, 0
    position = max(start, len(PACK_HEADER))
    while position + RECORD.size <= len(data):
        tag, raw, length = RECORD.unpack_from(data, position)
        end = position + RECORD.size + length
        if tag != RECORD_TAG or end > len(data):
            break
        entries[raw.hex()] = (position + RECORD.size, length)
        position = end
    return entries, position


def pack_record(blob_hash: str, data: bytes) -> bytes:
    """The framing before a blob's bytes in a pack."""
    return RECORD.pack(RECORD_TAG, bytes.fromhex(blob_hash), len(data))


class PackWriter:
    """Appends blobs to this process's own pack; ``finish`` writes its index."""

    def __init__(self, packs: PackSet, fsync: bool = False) -> None:
        self.packs = packs
        self.fsync = fsync
        self._fd: int | None = None
        self._name = ""
        self._buffer = bytearray()
        self._size = 0
        self._entries: dict[str, tuple[int, int]] = {}

    def _open(self) -> None:
        self.packs.root.mkdir(parents=True, exist_ok=True)
        self._name = f"pack-{os.getpid()}-{uuid.uuid4().hex[:16]}.pack"
        self._fd = os.open(
            self.packs.root / self._name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444
        )
        self._buffer = bytearray(PACK_HEADER)
        self._size = len(PACK_HEADER)
        self._entries = {}

    def holds(self, blob_hash: str) -> bool:
        return blob_hash in self._entries

    def add(self, blob_hash: str, data: bytes) -> None:
        if blob_hash in self._entries:
            return
        if self._fd is None:
            self._open()
        self._buffer += pack_record(blob_hash, data)
        self._entries[blob_hash] = (self._size + RECORD.size, len(data))
        self._buffer += data
        self._size += RECORD.size + len(data)
        if len(self._buffer) >= _WRITE_CHUNK:
            self.flush()
        if self._size >= MAX_PACK_BYTES:
            self.finish()

    def flush(self) -> None:
        """Write what is buffered to the pack (still without an index)."""
        if self._fd is None:
            return
        view = memoryview(self._buffer)
        while view:
            view = view[os.write(self._fd, view) :]
        self._buffer = bytearray()

    def finish(self) -> None:
        """Write out what is buffered and the pack's index (nothing to do when empty)."""
        if self._fd is None:
            return
        try:
            self.flush()
            if self.fsync:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None
        self.packs.write_index(self._name, self._entries, self.fsync)

    def abandon(self) -> None:
        """Close without an index (after a failure): ``gc`` indexes or trims the pack."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.flush()
            os.close(self._fd)
            self._fd = None


class PackSet:
    """The in-memory index of every pack under ``root``, refreshed on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dead_file = root / "dead"
        self._lock = threading.Lock()
        self._where: dict[str, Location] = {}
        self._contents: dict[str, dict[str, tuple[int, int]]] = {}
        self._finished: set[str] = set()
        self._scanned_to: dict[str, int] = {}
        self._dead: set[tuple[str, str]] = set()
        self._dead_read_to = 0

    # -- the index ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Load indexes of packs new since the last look, and new records of unfinished ones."""
        try:
            names = set(os.listdir(self.root))
        except FileNotFoundError:
            return
        with self._lock:
            self._read_dead()
            for gone in [p for p in self._contents if p not in names]:
                self._forget(gone)
            for name in sorted(n for n in names if n.endswith(".pack")):
                if name in self._finished:
                    continue
                index_name = name[: -len(".pack")] + ".idx"
                entries = self._load_index(index_name) if index_name in names else None
                if entries is not None:
                    self._finished.add(name)
                    self._contents[name] = {}
                    self._register(name, entries)
                    continue
                found, end = scan_pack(self.root / name, self._scanned_to.get(name, 0))
                self._scanned_to[name] = end
                self._contents.setdefault(name, {})
                self._register(name, found)

    def _load_index(self, index_name: str) -> dict[str, tuple[int, int]] | None:
        try:
            data = (self.root / index_name).read_bytes()
        except FileNotFoundError:
            return None
        return decode_index(data)

    def _register(self, name: str, entries: dict[str, tuple[int, int]]) -> None:
        self._contents[name].update(entries)
        for blob_hash, (offset, length) in entries.items():
            if (name, blob_hash) not in self._dead:
                self._where[blob_hash] = Location(name, offset, length)

    def _forget(self, name: str) -> None:
        for blob_hash in self._contents.pop(name, {}):
            location = self._where.get(blob_hash)
            if location is not None and location.pack == name:
                del self._where[blob_hash]
                self._relocate(blob_hash)
        self._finished.discard(name)
        self._scanned_to.pop(name, None)

    def _relocate(self, blob_hash: str) -> None:
        for name, entries in self._contents.items():
            if blob_hash in entries and (name, blob_hash) not in self._dead:
                offset, length = entries[blob_hash]
                self._where[blob_hash] = Location(name, offset, length)
                return

    def _read_dead(self) -> None:
        try:
            with open(self.dead_file, "rb") as handle:
                handle.seek(self._dead_read_to)
                data = handle.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self._dead_read_to += len(complete)
        for line in complete.decode().splitlines():
            name, _, blob_hash = line.partition(" ")
            self._dead.add((name, blob_hash))
            location = self._where.get(blob_hash)
            if location is not None and location.pack == name:
                del self._where[blob_hash]
                self._relocate(blob_hash)

    def locate(self, blob_hash: str, refresh: bool = True) -> Location | None:
        location = self._where.get(blob_hash)
        if location is None and refresh:
            self.refresh()
            location = self._where.get(blob_hash)
        return location

    def all_locations(self) -> dict[str, Location]:
        self.refresh()
        return dict(self._where)

    def contents(self) -> dict[str, dict[str, tuple[int, int]]]:
        self.refresh()
        return {name: dict(entries) for name, entries in self._contents.items()}

    def packs_holding(self, blob_hash: str) -> list[str]:
        """Every pack with a live entry for ``blob_hash`` (from the loaded index)."""
        return [
            name
            for name, entries in self._contents.items()
            if blob_hash in entries and (name, blob_hash) not in self._dead
        ]

    def is_dead(self, name: str, blob_hash: str) -> bool:
        return (name, blob_hash) in self._dead

    def unfinished(self) -> list[str]:
        self.refresh()
        return sorted(n for n in self._contents if n not in self._finished)

    # -- reading ------------------------------------------------------------------------------
    def read(self, location: Location) -> bytes:
        """The bytes at ``location`` (not verified: the caller hashes them)."""
        fd = os.open(self.root / location.pack, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.pread(fd, location.length, location.offset)
        finally:
            os.close(fd)

    def mtime(self, name: str) -> float:
        return os.stat(self.root / name).st_mtime

    # -- changing -----------------------------------------------------------------------------
    def write_index(self, name: str, entries: dict[str, tuple[int, int]], fsync: bool) -> None:
        temp = self.root / f".{name}.{uuid.uuid4().hex[:8]}.idx.part"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            os.write(fd, encode_index(entries))
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, self.root / (name[: -len(".pack")] + ".idx"))

    def mark_dead(self, pairs: list[tuple[str, str]]) -> None:
        """Record ``(pack, hash)`` pairs as removed (one append; lines are whole)."""
        if not pairs:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{name} {blob_hash}\n" for name, blob_hash in pairs).encode()
        fd = os.open(self.dead_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, text)
        finally:
            os.close(fd)
        self.refresh()

    def delete_pack(self, name: str) -> None:
        """Remove a pack and its index (index first: a crash between leaves an unfinished
        pack, which ``gc`` indexes again). The caller holds the store's exclusive lock."""
        for suffix in (".idx", ".pack"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.root / (name[: -len(".pack")] + suffix))
        self.refresh()

    def prune_dead(self) -> None:
        """Drop dead-list lines of packs that no longer exist (exclusive lock held)."""
        self.refresh()
        keep = sorted((n, h) for n, h in self._dead if n in self._contents)
        temp = self.root / f".dead.{uuid.uuid4().hex[:8]}.part"
        temp.write_text("".join(f"{n} {h}\n" for n, h in keep))
        os.replace(temp, self.dead_file)
        with self._lock:
            self._dead = set(keep)
            self._dead_read_to = self.dead_file.stat().st_size

    def trim_unfinished(self) -> int:
        """Cut the partial tail of each unfinished pack and write its index; returns the
        bytes trimmed. Only while no writer is active (the store's exclusive lock)."""
        trimmed = 0
        for name in self.unfinished():
            path = self.root / name
            entries, end = scan_pack(path)
            size = path.stat().st_size
            if end == 0:  # not even a header: nothing in it
                self.delete_pack(name)
                trimmed += size
                continue
            if size > end:
                os.chmod(path, 0o644)
                os.truncate(path, end)
                os.chmod(path, 0o444)
                trimmed += size - end
            self.write_index(name, entries, fsync=False)
        self.refresh()
        return trimmed
