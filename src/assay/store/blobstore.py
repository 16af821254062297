"""A content-addressed blob store in a local folder.

Blobs live at ``objects/<first 2 hex>/<rest>``; each is written to ``tmp/`` first and renamed
into place, so a reader never sees a partial blob and a killed writer leaves only a temp file
(which ``gc`` removes). Identical content is stored once. Blobs are made read-only; bundle views
are copies or reflinks by default, so writing through a view cannot change a blob.

A blob found corrupted by ``verify`` is moved to ``quarantine/`` (kept as evidence, out of the
way), so the next add of intact content stores it afresh. An add whose content is already
stored compares the stored blob's size with its own (one ``stat``, no read): a blob's size is
fixed by its hash, so a different size means a damaged blob, which the incoming content
replaces.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from assay.core.errors import (
    BlobCorrupted,
    BlobMissing,
    InvalidInput,
    StorageError,
    StorageFull,
    UnreadableFile,
)
from assay.core.hashing import LARGE_FILE_BYTES, hash_bytes, hash_file
from assay.store.fileops import CopyReadError, copy_and_hash
from assay.store.fileops import read_source as _read_source
from assay.store.fileops import try_link as _try_link
from assay.store.packs import PackSet, PackWriter

_FICLONE = 0x40049409  # ioctl number of Linux's FICLONE (reflink a whole file)
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = 0o444
TEMP_SUFFIX = ".part"
_counter = itertools.count()
_PID = [os.getpid()]  # cached (one getpid per blob adds up); refreshed in a forked child
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class BlobInfo:
    blob_hash: str
    path: Path
    size: int
    mtime: float


def storage_error(exc: OSError, what: str) -> StorageError | StorageFull:
    """Map an OSError while writing to the store to a clear Assay error."""
    if exc.errno in _FULL_ERRNOS:
        return StorageFull(f"no space left while {what}: {exc.strerror}; nothing was added")
    return StorageError(f"cannot write to the store while {what}: {exc.strerror or exc}")


class BlobStore:
    """Blobs addressed by their BLAKE3 hash under ``root``."""

    def __init__(self, root: Path, fsync: bool = False, pack_threshold: int = 65536) -> None:
        self.root = root
        #: Blobs smaller than this are appended to pack files by bulk adds (0: never).
        self.pack_threshold = pack_threshold
        self.packs = PackSet(root / "packs")
        self.objects = root / "objects"
        self._objects = str(self.objects)
        self.tmp = root / "tmp"
        self.quarantine_root = root / "quarantine"
        self.fsync = fsync
        self._made_dirs: set[str] = set()

    # -- layout -------------------------------------------------------------------------------
    def path_for(self, blob_hash: str) -> Path:
        return self.objects / blob_hash[:2] / blob_hash[2:]

    def has(self, blob_hash: str) -> bool:
        if os.path.exists(f"{self._objects}/{blob_hash[:2]}/{blob_hash[2:]}"):
            return True
        return self.packs.locate(blob_hash) is not None

    def size_of(self, blob_hash: str, refresh_packs: bool = True) -> int | None:
        """The stored blob's size (one ``stat``, or its pack entry), or None when absent."""
        try:
            return os.stat(f"{self._objects}/{blob_hash[:2]}/{blob_hash[2:]}").st_size
        except FileNotFoundError:
            location = self.packs.locate(blob_hash, refresh_packs)
            return None if location is None else location.length

    def intact_sizes(self, expected: dict[str, int]) -> set[str]:
        """Which blobs of ``{hash: size}`` are stored with that size (one ``stat`` each).

        A stored blob of another size is damaged: callers store it again from its source.
        Many blobs are stat-ed relative to their shard's descriptor (no path walk each).
        """
        self.packs.refresh()
        if len(expected) < 512:
            return {h for h, size in expected.items() if self.size_of(h, False) == size}
        by_shard: dict[str, list[tuple[str, int]]] = {}
        for blob_hash, size in expected.items():
            by_shard.setdefault(blob_hash[:2], []).append((blob_hash, size))
        found: set[str] = set()
        for shard, items in by_shard.items():
            try:
                fd = os.open(f"{self._objects}/{shard}", os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                continue
            try:
                for blob_hash, size in items:
                    try:
                        if os.stat(blob_hash[2:], dir_fd=fd).st_size == size:
                            found.add(blob_hash)
                    except FileNotFoundError:
                        continue
            finally:
                os.close(fd)
        for blob_hash, size in expected.items():
            location = self.packs.locate(blob_hash, refresh=False)
            if location is not None and location.length == size:
                found.add(blob_hash)
        return found

    def has_any_blob(self) -> bool:
        """Whether the store holds at least one blob (stops at the first one found)."""
        return next(self.iter_blobs(), None) is not None

    def existing(self, blob_hashes: Iterable[str]) -> set[str]:
        """Which of ``blob_hashes`` are stored: one directory listing per shard, not a stat
        per blob, when there are many."""
        wanted = set(blob_hashes)
        self.packs.refresh()
        packed = {h for h in wanted if self.packs.locate(h, refresh=False) is not None}
        wanted -= packed
        if len(wanted) < 512:
            return packed | {h for h in wanted if self.has(h)}
        by_shard: dict[str, list[str]] = {}
        for blob_hash in wanted:
            by_shard.setdefault(blob_hash[:2], []).append(blob_hash)
        found: set[str] = set()
        for shard, hashes in by_shard.items():
            try:
                names = {e.name for e in os.scandir(f"{self._objects}/{shard}")}
            except FileNotFoundError:
                continue
            found.update(h for h in hashes if h[2:] in names)
        return found | packed

    def _temp_path(self, blob_hash: str | None = None) -> Path:
        """A unique temp name: next to the final place when the hash is known (same-directory
        rename, and no extra directory), else under ``tmp/``."""
        unique = f"{_PID[0]}-{threading.get_ident()}-{next(_counter)}"
        if blob_hash is None:
            self.tmp.mkdir(parents=True, exist_ok=True)
            return self.tmp / f"{unique}{TEMP_SUFFIX}"
        self._ensure_shard(blob_hash)
        return self.objects / blob_hash[:2] / f".{blob_hash[2:12]}-{unique}{TEMP_SUFFIX}"

    def _ensure_shard(self, blob_hash: str) -> None:
        shard = blob_hash[:2]
        if shard not in self._made_dirs:
            (self.objects / shard).mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(shard)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Held (shared) by every add from its first blob to its catalog commit."""
        with self._lock(fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        """Held (exclusive) by ``gc``: no add is between writing blobs and committing rows."""
        with self._lock(fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def _lock(self, mode: int) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "gc.lock", "a+") as handle:
            fcntl.flock(handle, mode)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _publish(self, temp: Path, blob_hash: str) -> None:
        """Move a finished temp file into place; an existing blob wins (same content)."""
        self._ensure_shard(blob_hash)
        if self.fsync:
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(temp, self.path_for(blob_hash))

    # -- writing ------------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        blob_hash = hash_bytes(data)
        if self.size_of(blob_hash) == len(data):
            return blob_hash
        # Absent, or stored with another size (damaged): write it (again) from these bytes.
        temp = self._temp_path(blob_hash)
        try:
            # Created read-only: the descriptor may still write, nobody else can open for write.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _READ_ONLY)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            self._publish(temp, blob_hash)
        except OSError as exc:
            _remove_quietly(temp)
            raise storage_error(exc, "writing a blob") from None
        return blob_hash

    def put_file(self, source: Path, before: os.stat_result | None = None) -> tuple[str, int]:
        """Store the bytes of ``source``; returns ``(blob hash, size)``.

        Small files are read once, hashed and written; large files are copied by the kernel
        while another thread hashes the copy right behind it, so hashing overlaps the write.
        """
        if before is None:
            try:
                before = os.stat(source)
            except OSError as exc:
                raise UnreadableFile(f"cannot read {source}: {exc.strerror}") from None
        if before.st_size < LARGE_FILE_BYTES:
            data = _read_source(source, before.st_size)
            return self.put_bytes(data), len(data)
        return self._put_large(source, before), before.st_size

    def _put_large(self, source: Path, before: os.stat_result) -> str:
        """Copy ``source`` to a temp file while hashing the copy (``copy_and_hash``), then
        publish it, unless the source changed meanwhile (its size or mtime moved)."""
        temp = self._temp_path()
        try:
            try:
                source_fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise UnreadableFile(f"cannot read {source}: {exc.strerror}") from None
            try:
                dest_fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    blob_hash, copied = copy_and_hash(source_fd, dest_fd)
                finally:
                    os.close(dest_fd)
            except CopyReadError as exc:
                raise UnreadableFile(f"cannot read {source}: {exc.strerror}") from None
            finally:
                os.close(source_fd)
            after = os.stat(source)
            if (copied, after.st_size, after.st_mtime_ns) != (
                before.st_size,
                before.st_size,
                before.st_mtime_ns,
            ):
                raise InvalidInput(f"{source} changed while it was being added; try again")
            if self.size_of(blob_hash) == before.st_size:
                _remove_quietly(temp)
            else:  # absent, or damaged (another size): these bytes replace it
                os.chmod(temp, _READ_ONLY)
                self._publish(temp, blob_hash)
            return blob_hash
        except OSError as exc:
            _remove_quietly(temp)
            raise storage_error(exc, f"adding {source}") from None
        except BaseException:
            _remove_quietly(temp)
            raise

    def incoming_path(self, blob_hash: str) -> Path:
        """A fresh temp name beside the blob's final place, for a blob arriving from elsewhere
        (a remote). Hold ``writing()`` while it exists, so ``gc`` leaves it alone."""
        return self._temp_path(blob_hash)

    def adopt(self, temp: Path, blob_hash: str) -> bool:
        """Publish ``temp`` as blob ``blob_hash`` if its bytes hash to it; else remove it and
        return False (an existing blob is never touched by a bad download)."""
        try:
            actual = hash_file(temp)
        except FileNotFoundError:
            return False
        if actual != blob_hash:
            _remove_quietly(temp)
            return False
        if self.size_of(blob_hash) == os.path.getsize(temp):
            _remove_quietly(temp)
            return True
        os.chmod(temp, _READ_ONLY)
        self._publish(temp, blob_hash)
        return True

    # -- reading ------------------------------------------------------------------------------
    def _read_packed(self, blob_hash: str) -> bytes | None:
        location = self.packs.locate(blob_hash)
        return None if location is None else self.packs.read(location)

    def read_verified(self, blob_hash: str) -> bytes:
        path = self.path_for(blob_hash)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            packed = self._read_packed(blob_hash)
            if packed is None:
                raise BlobMissing(f"blob {blob_hash} is missing from the store") from None
            data = packed
        if hash_bytes(data) != blob_hash:
            raise BlobCorrupted(f"blob {blob_hash} is corrupted (its content no longer matches)")
        return data

    def verify(self, blob_hash: str) -> str | None:
        """``None`` when the blob is intact, else ``"missing"`` or ``"corrupted"``."""
        path = self.path_for(blob_hash)
        try:
            actual = hash_file(path)
        except FileNotFoundError:
            packed = self._read_packed(blob_hash)
            if packed is None:
                return "missing"
            actual = hash_bytes(packed)
        return None if actual == blob_hash else "corrupted"

    @contextlib.contextmanager
    def local_file(self, blob_hash: str) -> Iterator[Path]:
        """A file holding the blob's bytes: the loose blob itself, or (for a packed blob) a
        temp copy under ``tmp/``, removed afterwards. Not verified here."""
        path = self.path_for(blob_hash)
        data = None if path.exists() else self._read_packed(blob_hash)
        if data is None:
            yield path
            return
        temp = self._temp_path()
        try:
            temp.write_bytes(data)
            yield temp
        finally:
            _remove_quietly(temp)

    def materialize(self, blob_hash: str, dest: Path, link_types: tuple[str, ...]) -> None:
        """Make ``dest`` hold the blob's bytes, verifying them; never leaves a wrong ``dest``.

        ``reflink`` shares extents copy-on-write, ``hardlink`` shares the inode (fast, but a
        write through it would change the blob: opt-in only), ``copy`` copies.
        """
        source = self.path_for(blob_hash)
        if not source.exists() and self.packs.locate(blob_hash) is not None:
            self._materialize_packed(blob_hash, dest)
            return
        if not source.exists():
            if self.is_quarantined(blob_hash):
                raise BlobCorrupted(
                    f"blob {blob_hash} is corrupted (verify moved it to {self.quarantine_root}); "
                    "add the intact file again, or run 'assay verify --repair' to fetch it "
                    "from the remote"
                )
            raise BlobMissing(f"blob {blob_hash} is missing from the store")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # No unlink of ``dest`` first: os.replace swaps it atomically, so a concurrent reader
        # of the same view always finds a whole file.
        temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            for link_type in link_types:
                if _try_link(link_type, source, temp):
                    break
            else:
                shutil.copyfile(source, temp)
            if hash_file(temp) != blob_hash:
                raise BlobCorrupted(
                    f"blob {blob_hash} is corrupted (its content no longer matches); "
                    "run 'assay verify' to list affected bundles"
                )
            if not os.path.samefile(temp, source):
                os.chmod(temp, _READ_ONLY)
            os.replace(temp, dest)
        except OSError as exc:
            _remove_quietly(temp)
            raise storage_error(exc, f"materialising {dest}") from None
        except BaseException:
            _remove_quietly(temp)
            raise

    def _materialize_packed(self, blob_hash: str, dest: Path) -> None:
        data = self.read_verified(blob_hash)
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _READ_ONLY)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(temp, dest)
        except OSError as exc:
            _remove_quietly(temp)
            raise storage_error(exc, f"materialising {dest}") from None

    # -- packing ------------------------------------------------------------------------------
    def pack_writer(self) -> PackWriter:
        """A writer of this process's own pack; call ``finish()`` before committing rows.
        Hold ``writing()`` while it is open, so ``gc`` leaves its unfinished pack alone."""
        return PackWriter(self.packs, self.fsync)

    def loose_shards(self) -> set[str]:
        """The shard folders that exist (a blob in another shard is not stored loose)."""
        try:
            return {name for name in os.listdir(self.objects) if len(name) == 2}
        except FileNotFoundError:
            return set()

    def drop_damaged_loose(self, blob_hash: str, size: int) -> None:
        """Unlink a loose blob whose size is not ``size`` (damaged: a blob's size is fixed by
        its hash), so the intact copy about to be packed is the one read."""
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path_for(blob_hash)).st_size != size:
                os.unlink(self.path_for(blob_hash))

    # -- housekeeping -------------------------------------------------------------------------
    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob once: loose ones, then packed ones not also loose."""
        loose: set[str] = set()
        for blob in self.iter_loose():
            loose.add(blob.blob_hash)
            yield blob
        mtimes: dict[str, float] = {}
        for blob_hash, location in sorted(self.packs.all_locations().items()):
            if blob_hash in loose:
                continue
            if location.pack not in mtimes:
                mtimes[location.pack] = self.packs.mtime(location.pack)
            path = self.packs.root / location.pack
            yield BlobInfo(blob_hash, path, location.length, mtimes[location.pack])

    def iter_loose(self) -> Iterator[BlobInfo]:
        if not self.objects.exists():
            return
        for shard in os.scandir(self.objects):
            if not shard.is_dir() or len(shard.name) != 2:
                continue
            for entry in os.scandir(shard.path):
                if entry.name.startswith("."):
                    continue  # a temp file of a write in progress (or killed)
                stat = entry.stat()
                yield BlobInfo(
                    shard.name + entry.name, Path(entry.path), stat.st_size, stat.st_mtime
                )

    def iter_temp_files(self) -> Iterator[tuple[Path, float]]:
        """Temp files left by writes in progress or killed: under ``tmp/`` and in shards."""
        folders = [self.tmp]
        if self.objects.exists():
            folders.extend(Path(e.path) for e in os.scandir(self.objects) if e.is_dir())
        for folder in folders:
            if not folder.exists():
                continue
            for entry in os.scandir(folder):
                if entry.name.endswith(TEMP_SUFFIX):
                    yield Path(entry.path), entry.stat().st_mtime

    def remove(self, blob_hash: str) -> None:
        """Remove the loose blob and mark its pack entries dead (``gc`` repacks later)."""
        self.remove_many([blob_hash])

    def remove_many(self, blob_hashes: Iterable[str]) -> None:
        """``remove`` for many blobs, with one append to the packs' dead list."""
        dead: list[tuple[str, str]] = []
        for blob_hash in blob_hashes:
            _remove_quietly(self.path_for(blob_hash))
            dead.extend((name, blob_hash) for name in self.packs.packs_holding(blob_hash))
        self.packs.mark_dead(dead)

    # -- quarantine ---------------------------------------------------------------------------
    def quarantine(self, blob_hash: str) -> Path | None:
        """Move a (corrupted) blob to ``quarantine/<hash>`` (``<hash>.N`` if that is taken);
        returns where it went, or None when it was not stored. The caller holds
        ``collecting()``, so no add is relying on the blob between its check and its commit."""
        self.quarantine_root.mkdir(parents=True, exist_ok=True)
        target = self.quarantine_root / blob_hash
        number = 0
        while target.exists():
            number += 1
            target = self.quarantine_root / f"{blob_hash}.{number}"
        try:
            os.rename(self.path_for(blob_hash), target)
        except FileNotFoundError:
            location = self.packs.locate(blob_hash)
            if location is None:
                return None
            # Only this blob's entry goes: the rest of the pack stays readable.
            target.write_bytes(self.packs.read(location))
            self.packs.mark_dead([(location.pack, blob_hash)])
        return target

    def is_quarantined(self, blob_hash: str) -> bool:
        return (self.quarantine_root / blob_hash).exists()

    def quarantined(self) -> list[Path]:
        """Every file in the quarantine folder."""
        if not self.quarantine_root.exists():
            return []
        return sorted(Path(e.path) for e in os.scandir(self.quarantine_root) if e.is_file())


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
