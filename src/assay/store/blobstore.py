"""A content-addressed blob store in a local folder.

Blobs live at ``objects/<first 2 hex>/<rest>``; each is written to ``tmp/`` first and renamed
into place, so a reader never sees a partial blob and a killed writer leaves only a temp file
(which ``gc`` removes). Identical content is stored once. Blobs are made read-only; bundle views
are copies or reflinks by default, so writing through a view cannot change a blob.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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

_FICLONE = 0x40049409  # ioctl number of Linux's FICLONE (reflink a whole file)
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = 0o444

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

    def __init__(self, root: Path, fsync: bool = False) -> None:
        self.root = root
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        self.fsync = fsync
        self._made_dirs: set[str] = set()

    # -- layout -------------------------------------------------------------------------------
    def path_for(self, blob_hash: str) -> Path:
        return self.objects / blob_hash[:2] / blob_hash[2:]

    def has(self, blob_hash: str) -> bool:
        return self.path_for(blob_hash).exists()

    def _temp_path(self) -> Path:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / f"{uuid.uuid4().hex}.part"

    def _ensure_shard(self, blob_hash: str) -> None:
        shard = blob_hash[:2]
        if shard not in self._made_dirs:
            (self.objects / shard).mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(shard)

    def freshen(self, blob_hash: str) -> bool:
        """Touch an existing blob so a concurrent ``gc`` (which has a grace period) keeps it."""
        try:
            os.utime(self.path_for(blob_hash))
        except FileNotFoundError:
            return False
        return True

    def _publish(self, temp: Path, blob_hash: str) -> None:
        """Move a finished temp file into place; an existing blob wins (same content)."""
        self._ensure_shard(blob_hash)
        target = self.path_for(blob_hash)
        os.chmod(temp, _READ_ONLY)
        if self.fsync:
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(temp, target)

    # -- writing ------------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        blob_hash = hash_bytes(data)
        if self.freshen(blob_hash):
            return blob_hash
        temp = self._temp_path()
        try:
            with open(temp, "wb") as handle:
                handle.write(data)
            self._publish(temp, blob_hash)
        except OSError as exc:
            _remove_quietly(temp)
            raise storage_error(exc, "writing a blob") from None
        return blob_hash

    def put_file(self, source: Path, known_hash: str | None = None) -> tuple[str, int]:
        """Store the bytes of ``source``; returns ``(blob hash, size)``.

        ``known_hash`` comes from the stat cache: when that blob is already stored, nothing is
        read. Small files are read once, hashed and written; large files are copied by the
        kernel while another thread hashes them, so hashing overlaps the write.
        """
        try:
            before = os.stat(source)
        except OSError as exc:
            raise UnreadableFile(f"cannot read {source}: {exc.strerror}") from None
        if known_hash is not None and self.freshen(known_hash):
            return known_hash, before.st_size
        if before.st_size < LARGE_FILE_BYTES:
            data = _read_source(source)
            return self.put_bytes(data), len(data)
        return self._put_large(source, before), before.st_size

    def _put_large(self, source: Path, before: os.stat_result) -> str:
        temp = self._temp_path()
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                hashing = pool.submit(hash_file, source, before.st_size)
                try:
                    shutil.copyfile(source, temp)
                finally:
                    blob_hash = hashing.result()
            after = os.stat(source)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise InvalidInput(f"{source} changed while it was being added; try again")
            if self.has(blob_hash):
                _remove_quietly(temp)
                self.freshen(blob_hash)
            else:
                self._publish(temp, blob_hash)
            return blob_hash
        except PermissionError as exc:
            _remove_quietly(temp)
            raise UnreadableFile(f"cannot read {source}: {exc.strerror}") from None
        except OSError as exc:
            _remove_quietly(temp)
            if exc.filename is not None and str(exc.filename) == str(source):
                raise UnreadableFile(f"cannot read {source}: {exc.strerror}") from None
            raise storage_error(exc, f"adding {source}") from None
        except BaseException:
            _remove_quietly(temp)
            raise

    # -- reading ------------------------------------------------------------------------------
    def read_verified(self, blob_hash: str) -> bytes:
        path = self.path_for(blob_hash)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobMissing(f"blob {blob_hash} is missing from the store") from None
        if hash_bytes(data) != blob_hash:
            raise BlobCorrupted(f"blob {blob_hash} is corrupted (its content no longer matches)")
        return data

    def verify(self, blob_hash: str) -> str | None:
        """``None`` when the blob is intact, else ``"missing"`` or ``"corrupted"``."""
        path = self.path_for(blob_hash)
        try:
            actual = hash_file(path)
        except FileNotFoundError:
            return "missing"
        return None if actual == blob_hash else "corrupted"

    def materialize(self, blob_hash: str, dest: Path, link_types: tuple[str, ...]) -> None:
        """Make ``dest`` hold the blob's bytes, verifying them; never leaves a wrong ``dest``.

        ``reflink`` shares extents copy-on-write, ``hardlink`` shares the inode (fast, but a
        write through it would change the blob: opt-in only), ``copy`` copies.
        """
        source = self.path_for(blob_hash)
        if not source.exists():
            raise BlobMissing(f"blob {blob_hash} is missing from the store")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_quietly(dest)
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

    # -- housekeeping -------------------------------------------------------------------------
    def iter_blobs(self) -> Iterator[BlobInfo]:
        if not self.objects.exists():
            return
        for shard in os.scandir(self.objects):
            if not shard.is_dir() or len(shard.name) != 2:
                continue
            for entry in os.scandir(shard.path):
                stat = entry.stat()
                yield BlobInfo(
                    shard.name + entry.name, Path(entry.path), stat.st_size, stat.st_mtime
                )

    def iter_temp_files(self) -> Iterator[tuple[Path, float]]:
        if not self.tmp.exists():
            return
        for entry in os.scandir(self.tmp):
            yield Path(entry.path), entry.stat().st_mtime

    def remove(self, blob_hash: str) -> None:
        _remove_quietly(self.path_for(blob_hash))


def _try_link(link_type: str, source: Path, temp: Path) -> bool:
    if link_type == "hardlink":
        try:
            os.link(source, temp)
        except OSError:
            return False
        return True
    if link_type == "reflink":
        return _reflink(source, temp)
    return False


def _reflink(source: Path, temp: Path) -> bool:
    try:
        with open(source, "rb") as src, open(temp, "wb") as dst:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
    except OSError:
        _remove_quietly(temp)
        return False
    return True


def _read_source(source: Path) -> bytes:
    try:
        with open(source, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UnreadableFile(f"cannot read {source}: {exc.strerror}") from None


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def age_seconds(mtime: float) -> float:
    return time.time() - mtime
