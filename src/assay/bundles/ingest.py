"""Bringing files into the blob store: scan, skip what the stat cache knows, store the rest.

Everything is checked before anything is written (missing paths, unreadable entries, special
files), so most bad input fails with the store untouched. Small files are stored by a thread
pool in batches (their cost is system calls, which release the GIL); large files one at a time,
each copied by the kernel while another thread hashes it. Paths stay plain strings on the hot
path: building 10,000 ``Path`` objects costs more than stat-ing 10,000 files.
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from assay.core.errors import PathNotFound, UnreadableFile
from assay.core.hashing import LARGE_FILE_BYTES, hash_bytes
from assay.core.records import FileEntry
from assay.store.blobstore import BlobStore
from assay.store.fileops import read_source
from assay.store.packs import PACK_MIN_BLOBS
from assay.store.statcache import StatCache, cached_hash

_BATCH = 64
_WORKERS = 4
_TREE_LOOKUP_MIN_FILES = 32
#: An add of at least this many new small files packs them (fewer stay loose: a pack per
#: one-file add would make many tiny packs; ``gc --repack`` packs loose ones later). The same
#: rule as remote pushes and pulls.
PACK_MIN_FILES = PACK_MIN_BLOBS

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class SourceFile:
    bundle_path: str
    source: str  # absolute path
    stat: os.stat_result


def _check_regular(path: str, result: os.stat_result) -> os.stat_result:
    if not stat_module.S_ISREG(result.st_mode):
        raise UnreadableFile(f"cannot add {path}: not a regular file (a pipe, socket or device)")
    if not os.access(path, os.R_OK):
        raise UnreadableFile(f"cannot read {path}: permission denied")
    return result


def _stat_file(path: str) -> os.stat_result:
    try:
        result = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise UnreadableFile(f"cannot read {path}: it is a broken symbolic link") from None
        raise PathNotFound(f"path does not exist: {path}") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror}") from None
    return _check_regular(path, result)


def walk_directory(directory: str, prefix: str = "") -> Iterator[SourceFile]:
    """Every file below ``directory`` (symlinks followed), sorted, as ``prefix/relative``."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise UnreadableFile(f"cannot read directory {directory}: {exc.strerror}") from None
    for entry in entries:
        relative = f"{prefix}/{entry.name}" if prefix else entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
            result = None if is_dir else entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            raise UnreadableFile(
                f"cannot read {entry.path}: it is a broken symbolic link"
            ) from None
        except OSError as exc:
            raise UnreadableFile(f"cannot read {entry.path}: {exc.strerror}") from None
        if result is None:
            yield from walk_directory(entry.path, relative)
        else:
            yield SourceFile(relative, entry.path, _check_regular(entry.path, result))


def scan(sources: dict[str, Path]) -> list[SourceFile]:
    """Expand directories and stat every file; raises before anything is written."""
    files: dict[str, SourceFile] = {}
    for bundle_path, source in sources.items():
        path = os.path.abspath(source)
        if os.path.isdir(path):
            for found in walk_directory(path, bundle_path):
                files[found.bundle_path] = found
        else:
            files[bundle_path] = SourceFile(bundle_path, path, _stat_file(path))
    return [files[key] for key in sorted(files)]


def _cached_hashes(cache: StatCache, files: list[SourceFile]) -> dict[str, str]:
    """bundle path -> cached blob hash, for files the stat cache still vouches for."""
    found: dict[str, str] = {}
    if len(files) >= _TREE_LOOKUP_MIN_FILES:
        sources = [f.source for f in files]
        # The smallest and largest paths share exactly the prefix all of them share.
        root = os.path.commonpath([min(sources), max(sources)])
        if root != "/":
            entries = cache.lookup_tree(Path(root))
            for file in files:
                known = cached_hash(entries.get(file.source), file.stat)
                if known:
                    found[file.bundle_path] = known
            return found
    for file in files:
        known = cached_hash(cache.lookup(Path(file.source)), file.stat)
        if known:
            found[file.bundle_path] = known
    return found


def ingest(
    store: BlobStore,
    cache: StatCache,
    files: list[SourceFile],
    progress: ProgressCallback | None = None,
) -> list[FileEntry]:
    """Store every file's bytes; returns one entry per file in bundle-path order.

    The caller holds ``store.writing()`` so ``gc`` cannot remove a blob this add relies on.
    """
    known = _cached_hashes(cache, files)
    total = sum(f.stat.st_size for f in files)
    done = 0
    results: dict[str, FileEntry] = {}
    todo: list[SourceFile] = []
    # The stat cache vouches for the source, not for the blob: a blob of another size than
    # its source is damaged, so that file is stored again (one stat per blob, no read).
    stored = store.intact_sizes(
        {known[f.bundle_path]: f.stat.st_size for f in files if f.bundle_path in known}
    )
    for file in files:
        blob_hash = known.get(file.bundle_path)
        if blob_hash is not None and blob_hash in stored:
            results[file.bundle_path] = FileEntry(file.bundle_path, blob_hash, file.stat.st_size)
            done += file.stat.st_size
        else:
            todo.append(file)
    if progress is not None and done:
        progress(done, total)
    fresh: list[tuple[str, os.stat_result, str]] = []

    def store_batch(batch: list[SourceFile]) -> list[FileEntry]:
        return [
            FileEntry(file.bundle_path, *store.put_file(Path(file.source), file.stat))
            for file in batch
        ]

    def note(batch: list[SourceFile], entries: list[FileEntry]) -> None:
        nonlocal done
        for file, entry in zip(batch, entries, strict=True):
            results[entry.path] = entry
            fresh.append((file.source, file.stat, entry.blob_hash))
            done += entry.size
        if progress is not None:
            progress(done, total)

    packable = [f for f in todo if f.stat.st_size < store.pack_threshold]
    if len(packable) < PACK_MIN_FILES:
        packable = []
    packed_paths = {f.bundle_path for f in packable}
    small = [
        f for f in todo if f.stat.st_size < LARGE_FILE_BYTES and f.bundle_path not in packed_paths
    ]
    large = [f for f in todo if f.stat.st_size >= LARGE_FILE_BYTES]
    try:
        if packable:
            _pack(store, packable, note)
        batches = [small[i : i + _BATCH] for i in range(0, len(small), _BATCH)]
        if len(batches) <= 1:
            for batch in batches:
                note(batch, store_batch(batch))
        else:
            with ThreadPoolExecutor(max_workers=min(_WORKERS, len(batches))) as pool:
                for batch, entries in zip(batches, pool.map(store_batch, batches), strict=True):
                    note(batch, entries)
        for file in large:
            note([file], store_batch([file]))
    finally:
        # Even when a later file fails, remember the hashes already computed.
        cache.record(fresh)
    return [results[f.bundle_path] for f in files]


def _pack(
    store: BlobStore,
    files: list[SourceFile],
    note: Callable[[list[SourceFile], list[FileEntry]], None],
) -> None:
    """Read and hash small files in threads; append new ones to this process's own pack from
    this thread alone (large sequential writes); the pack's index is written before return."""
    store.packs.refresh()
    # A stat per new file costs more than reading it: look only in shards that exist.
    shards = store.loose_shards()

    def read_batch(batch: list[SourceFile]) -> list[tuple[str, bytes | None]]:
        out: list[tuple[str, bytes | None]] = []
        for file in batch:
            data = read_source(file.source, file.stat.st_size)
            blob_hash = hash_bytes(data)
            if blob_hash[:2] in shards:
                size = store.size_of(blob_hash, refresh_packs=False)
            else:
                location = store.packs.locate(blob_hash, refresh=False)
                size = None if location is None else location.length
            if size is not None and size != len(data):
                store.drop_damaged_loose(blob_hash, len(data))
            stored = size == len(data)
            out.append((blob_hash, None if stored else data))
        return out

    writer = store.pack_writer()
    batches = [files[i : i + _BATCH * 4] for i in range(0, len(files), _BATCH * 4)]
    try:
        with ThreadPoolExecutor(max_workers=min(_WORKERS, len(batches))) as pool:
            for batch, read in zip(batches, pool.map(read_batch, batches), strict=True):
                entries = []
                for file, (blob_hash, data) in zip(batch, read, strict=True):
                    if data is not None:
                        writer.add(blob_hash, data)
                    entries.append(FileEntry(file.bundle_path, blob_hash, file.stat.st_size))
                writer.flush()  # one large write per batch, before progress is reported
                note(batch, entries)
        writer.finish()
    except BaseException:
        writer.abandon()
        raise
