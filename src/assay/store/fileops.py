"""File operations of the blob store: links, reflinks, reading a small source file, and
copying a large one while hashing the copy."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import threading
from pathlib import Path

import blake3

from assay.core.errors import UnreadableFile

_FICLONE = 0x40049409  # ioctl number of Linux's FICLONE (reflink a whole file)
#: How much one copy call moves: the hashing thread follows the copy chunk by chunk, so it
#: ends one chunk after the copy (and reads what the copy wrote while it may still be cached).
COPY_CHUNK = 8 * 1024 * 1024
#: ``copy_file_range`` cannot copy between these two files: copy them another way.
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.ETXTBSY}


def try_link(link_type: str, source: Path, temp: Path) -> bool:
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
            linked = _reflinked(src.fileno(), dst.fileno())
    except OSError:  # cannot open one of them: no reflink, and the caller copies instead
        linked = False
    if not linked:
        _remove_quietly(temp)
    return linked


def read_source(source: Path | str, size: int) -> bytes:
    """The whole (small) file, with plain system calls: ``open()``'s buffered reader adds an
    ioctl, an lseek and an fstat per file, which add up over 10,000 files."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = [os.read(fd, size + 1)]
            # A short read of a regular file means end of file; a full one means it grew
            # since it was stat-ed: read on to the end.
            while len(chunks[-1]) > (size if len(chunks) == 1 else 0):
                chunks.append(os.read(fd, 1 << 20))
        finally:
            os.close(fd)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {source}: {exc.strerror}") from None
    return b"".join(chunks)


class CopyReadError(OSError):
    """The copy failed with an error that is not the destination's lack of room."""


def copy_and_hash(source_fd: int, dest_fd: int) -> tuple[str, int]:
    """Copy ``source_fd`` (from its start to its end) into the empty ``dest_fd`` (opened for
    reading and writing) and return ``(BLAKE3 of the copy, bytes copied)``.

    What is hashed is the copy itself, read back from the page cache right behind the copy
    (never the source a second time), so the hash names exactly the bytes stored even if the
    source changes meanwhile. Where the file system shares extents (XFS, btrfs), a reflink
    copies nothing and every core hashes; otherwise the kernel copies (``copy_file_range``,
    else ``sendfile``) while a second thread hashes, with the cores the copy leaves free.
    """
    with contextlib.suppress(OSError):  # advice only: a larger read-ahead for a cold source
        os.posix_fadvise(source_fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    if _reflinked(source_fd, dest_fd):
        size = os.fstat(dest_fd).st_size
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        _hash_range(dest_fd, 0, size, hasher)
        return hasher.hexdigest(), size
    hasher = blake3.blake3(max_threads=max(1, len(os.sched_getaffinity(0)) - 1))
    follower = _Follower(dest_fd, hasher)
    follower.start()
    copied = 0
    try:
        copied = _copy(source_fd, dest_fd, follower)
    finally:
        follower.finish(copied)
    return follower.result(), copied


def _reflinked(source_fd: int, dest_fd: int) -> bool:
    """Whether ``dest_fd`` now shares ``source_fd``'s extents (False on ext4, tmpfs, or
    across file systems: then the bytes are copied)."""
    try:
        fcntl.ioctl(dest_fd, _FICLONE, source_fd)
    except OSError:
        return False
    return True


def _copy(source_fd: int, dest_fd: int, follower: _Follower) -> int:
    copied = 0
    use_copy_range = True
    while True:
        try:
            if use_copy_range:
                moved = os.copy_file_range(source_fd, dest_fd, COPY_CHUNK)
            else:
                moved = os.sendfile(dest_fd, source_fd, None, COPY_CHUNK)
        except OSError as exc:
            if use_copy_range and copied == 0 and exc.errno in _NO_COPY_RANGE:
                use_copy_range = False
                continue
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise
            raise CopyReadError(exc.errno, exc.strerror) from None
        if moved == 0:
            return copied
        copied += moved
        follower.advance(copied)


class _Follower(threading.Thread):
    """Hashes the destination up to where the copy has reached, as the copy goes on."""

    def __init__(self, dest_fd: int, hasher: blake3.blake3) -> None:
        super().__init__(name="assay-hash-copy", daemon=True)
        self._fd = dest_fd
        self._hasher = hasher
        self._ready = threading.Condition()
        self._copied = 0
        self._done = False
        self._error: BaseException | None = None

    def advance(self, copied: int) -> None:
        with self._ready:
            self._copied = copied
            self._ready.notify()

    def finish(self, copied: int) -> None:
        with self._ready:
            self._copied = copied
            self._done = True
            self._ready.notify()
        self.join()

    def result(self) -> str:
        if self._error is not None:
            raise self._error
        return self._hasher.hexdigest()

    def run(self) -> None:
        hashed = 0
        try:
            while True:
                with self._ready:
                    while self._copied == hashed and not self._done:
                        self._ready.wait()
                    target, done = self._copied, self._done
                if target > hashed:
                    _hash_range(self._fd, hashed, target, self._hasher)
                    hashed = target
                elif done:
                    return
        except BaseException as exc:  # handed to the copying thread by result()
            self._error = exc


def _hash_range(fd: int, start: int, end: int, hasher: blake3.blake3) -> None:
    """Feed bytes ``[start, end)`` of ``fd`` to ``hasher`` through a memory map."""
    if end <= start:
        return
    offset = start - start % mmap.ALLOCATIONGRANULARITY
    with mmap.mmap(fd, end - offset, access=mmap.ACCESS_READ, offset=offset) as mapped:
        mapped.madvise(mmap.MADV_SEQUENTIAL)
        with memoryview(mapped) as view, view[start - offset :] as part:
            hasher.update(part)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
