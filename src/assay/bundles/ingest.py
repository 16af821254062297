"""Bringing files into the blob store: scan, skip what the stat cache knows, store the rest.

Everything is checked before anything is written (missing paths, unreadable entries, special
files), so most bad input fails with the store untouched. Small files are stored by a thread
pool in batches (their cost is system calls, which release the GIL); large files one at a time,
each copied by the kernel while another thread hashes it.
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from assay.core.errors import PathNotFound, UnreadableFile
from assay.core.hashing import LARGE_FILE_BYTES
from assay.core.records import FileEntry
from assay.store.blobstore import BlobStore
from assay.store.statcache import StatCache, cached_hash

_BATCH = 64
_WORKERS = 8
_TREE_LOOKUP_MIN_FILES = 32

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class SourceFile:
    bundle_path: str
    source: Path
    stat: os.stat_result


def walk_directory(directory: Path) -> Iterator[tuple[str, Path]]:
    """(relative POSIX path, absolute path) of every entry below ``directory``, sorted."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise UnreadableFile(f"cannot read directory {directory}: {exc.strerror}") from None
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=True):
            for relative, inner in walk_directory(path):
                yield f"{entry.name}/{relative}", inner
        else:
            yield entry.name, path


def _regular_file_stat(path: Path) -> os.stat_result:
    try:
        result = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            raise UnreadableFile(f"cannot read {path}: it is a broken symbolic link") from None
        raise PathNotFound(f"path does not exist: {path}") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror}") from None
    if not stat_module.S_ISREG(result.st_mode):
        raise UnreadableFile(f"cannot add {path}: not a regular file (a pipe, socket or device)")
    if not os.access(path, os.R_OK):
        raise UnreadableFile(f"cannot read {path}: permission denied")
    return result


def scan(sources: dict[str, Path]) -> list[SourceFile]:
    """Expand directories and stat every file; raises before anything is written."""
    files: dict[str, SourceFile] = {}
    for bundle_path, source in sources.items():
        if source.is_dir():
            pairs: Iterator[tuple[str, Path]] = (
                (f"{bundle_path}/{relative}" if bundle_path else relative, path)
                for relative, path in walk_directory(source)
            )
        else:
            pairs = iter([(bundle_path, source)])
        for path_in_bundle, path in pairs:
            files[path_in_bundle] = SourceFile(path_in_bundle, path, _regular_file_stat(path))
    return [files[key] for key in sorted(files)]


def _cached_hashes(cache: StatCache, files: list[SourceFile]) -> dict[str, str]:
    """bundle path -> cached blob hash, for files the stat cache still vouches for."""
    if not files:
        return {}
    absolute = [str(f.source.absolute()) for f in files]
    found: dict[str, str] = {}
    if len(files) >= _TREE_LOOKUP_MIN_FILES:
        root = os.path.commonpath(absolute)
        if root != "/":
            entries = cache.lookup_tree(Path(root))
            for file, path in zip(files, absolute, strict=True):
                known = cached_hash(entries.get(path), file.stat)
                if known:
                    found[file.bundle_path] = known
            return found
    for file, path in zip(files, absolute, strict=True):
        known = cached_hash(cache.lookup(Path(path)), file.stat)
        if known:
            found[file.bundle_path] = known
    return found


def ingest(
    store: BlobStore,
    cache: StatCache,
    files: list[SourceFile],
    progress: ProgressCallback | None = None,
) -> list[FileEntry]:
    """Store every file's bytes; returns one entry per file in bundle-path order."""
    known = _cached_hashes(cache, files)
    total = sum(f.stat.st_size for f in files)
    done = 0
    results: dict[str, FileEntry] = {}
    fresh: list[tuple[str, os.stat_result, str]] = []

    def store_one(file: SourceFile) -> FileEntry:
        blob_hash, size = store.put_file(file.source, known.get(file.bundle_path))
        return FileEntry(file.bundle_path, blob_hash, size)

    def store_batch(batch: list[SourceFile]) -> list[FileEntry]:
        return [store_one(file) for file in batch]

    def note(entry: FileEntry, file: SourceFile) -> None:
        nonlocal done
        results[entry.path] = entry
        if file.bundle_path not in known:
            fresh.append((str(file.source.absolute()), file.stat, entry.blob_hash))
        done += entry.size
        if progress is not None:
            progress(done, total)

    small = [f for f in files if f.stat.st_size < LARGE_FILE_BYTES]
    large = [f for f in files if f.stat.st_size >= LARGE_FILE_BYTES]
    try:
        if small:
            batches = [small[i : i + _BATCH] for i in range(0, len(small), _BATCH)]
            if len(batches) == 1:
                for file in small:
                    note(store_one(file), file)
            else:
                with ThreadPoolExecutor(max_workers=min(_WORKERS, len(batches))) as pool:
                    for batch, entries in zip(batches, pool.map(store_batch, batches), strict=True):
                        for file, entry in zip(batch, entries, strict=True):
                            note(entry, file)
        for file in large:
            note(store_one(file), file)
    finally:
        # Even when a later file fails, remember the hashes already computed.
        cache.record(fresh)
    return [results[f.bundle_path] for f in files]
