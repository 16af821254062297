"""A remote: content-addressed blobs and small immutable documents under one URL, over fsspec.

Layout under the remote URL (``s3://bucket/prefix``, ``file:///shared/drive``, ``gs://...``)::

    objects/<first 2 hex>/<rest>      blobs, named by BLAKE3 hash, shared by every context
    packs/<name>.pack, <name>.idx     small blobs, many per object (see ``remote_packs``)
    contexts/<name>/...               per-context documents (see ``assay.bundles.remote_index``)

This module knows keys, bytes and transfers, not bundles. Backends (``remote_backends``,
``remote_s3``): ``file://`` goes straight to the file system (temp name + rename for blobs,
``link()`` for no-clobber creates); ``s3://`` through botocore (``If-None-Match: *`` for
no-clobber creates); anything else through its fsspec file system. Every failure of the backend is mapped to one Assay error here:
unreachable (after bounded retries and timeouts), access denied, missing bucket, other I/O.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from assay.core.errors import (
    AssayError,
    BlobCorrupted,
    BlobMissing,
    RemoteAccessDenied,
    RemoteNotFound,
    RemoteObjectCorrupted,
    RemoteUnavailable,
    StorageError,
)
from assay.core.hashing import hash_file
from assay.store.blobstore import BlobStore, storage_error
from assay.store.packs import PACK_MIN_BLOBS
from assay.store.remote_backends import (
    HEAD_BELOW,
    FsspecBackend,
    LocalBackend,
    RemoteConfig,
    blob_key,
    first_line,
    no_credentials_types,
    normalize_url,
    unreachable_types,
)
from assay.store.remote_packs import RemotePacks
from assay.store.remote_s3 import S3Backend

__all__ = ["RemoteConfig", "RemoteStore", "blob_key", "normalize_url"]

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total)
T = TypeVar("T")
R = TypeVar("R")


# -- the remote -----------------------------------------------------------------------------
class RemoteStore:
    """Blobs and documents under one remote URL."""

    def __init__(
        self,
        url: str,
        options: Mapping[str, Any] | None = None,
        config: RemoteConfig | None = None,
        cache_root: Path | None = None,
    ) -> None:
        """``cache_root`` (``$ASSAY_HOME/remotes``): where pack indexes read once are kept."""
        self.url = normalize_url(url)
        self.options = dict(options or {})
        self.config = config or RemoteConfig.from_env()
        parsed = urlparse(self.url)
        self._backend: LocalBackend | FsspecBackend
        if parsed.scheme == "file":
            self._backend = LocalBackend(Path(parsed.path))
        else:
            with self._mapped("connecting"):
                backend = S3Backend if parsed.scheme in ("s3", "s3a") else FsspecBackend
                self._backend = backend(self.url, self.options, self.config)
        self.packs = RemotePacks(self, cache_root)

    @property
    def conditional_writes(self) -> str:
        """How no-clobber creates are done: ``if-none-match``, ``link``, or
        ``new-names-only`` (the documented fallback)."""
        return self._backend.conditional_writes

    def describe(self) -> str:
        return self._backend.describe() if hasattr(self, "_backend") else self.url

    # -- error mapping ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        try:
            yield
        except AssayError:
            raise
        except FileExistsError:
            raise
        except no_credentials_types() as exc:
            raise RemoteAccessDenied(
                f"no credentials for remote {self.describe()} while {what}: {first_line(exc)}; "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            ) from None
        except PermissionError as exc:
            raise RemoteAccessDenied(
                f"remote {self.describe()} refused access while {what}: {first_line(exc)}; "
                "check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE) "
                "and their permissions"
            ) from None
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower() and isinstance(self._backend, FsspecBackend):
                raise RemoteNotFound(self._backend._no_bucket()) from None
            raise
        except unreachable_types() as exc:
            raise RemoteUnavailable(
                f"cannot reach remote {self.describe()} while {what} "
                f"({self.config.retries} tries, {self.config.connect_timeout:g} s connect and "
                f"{self.config.read_timeout:g} s read timeouts): {first_line(exc)}"
            ) from None
        except OSError as exc:
            if isinstance(self._backend, LocalBackend) and exc.errno is not None:
                raise storage_error(exc, f"{what} on remote {self.describe()}") from None
            raise StorageError(
                f"remote {self.describe()}: {what} failed: {first_line(exc)}"
            ) from None

    # -- documents ----------------------------------------------------------------------------
    def probe(self, create: bool = False) -> None:
        """Check the remote is reachable, exists and lets us in (``create``: make a missing
        ``file://`` folder whose parent exists)."""
        with self._mapped("checking the remote"):
            self._backend.probe(create)

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        with self._mapped(f"reading {key}"):
            try:
                return self._backend.get_bytes(key)
            except FileNotFoundError:
                return None

    def read_many(self, keys: Sequence[str]) -> dict[str, bytes | None]:
        results = self.parallel(self.read, keys)
        return dict(zip(keys, results, strict=True))

    def write_new(self, key: str, data: bytes) -> bool:
        """Create ``key`` holding ``data``; False (nothing written) when it exists already."""
        with self._mapped(f"writing {key}"):
            return self._backend.put_new(key, data)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes of ``key`` from ``start`` (fewer when the object is shorter);
        FileNotFoundError when there is no such object."""
        with self._mapped(f"reading {key}"):
            return self._backend.get_range(key, start, length)

    def exists(self, key: str) -> bool:
        with self._mapped(f"looking for {key}"):
            return self._backend.exists(key)

    def list_files(self, prefix: str) -> list[str]:
        """Names of the objects directly under ``prefix/`` (one listing)."""
        with self._mapped(f"listing {prefix}"):
            return self._backend.list_files(prefix)

    def list_dirs(self, prefix: str) -> list[str]:
        with self._mapped(f"listing {prefix}"):
            return self._backend.list_dirs(prefix)

    def delete(self, keys: Sequence[str]) -> None:
        with self._mapped("deleting objects"):
            self._backend.delete(list(keys))

    def find(self, prefix: str = "") -> list[tuple[str, int, str]]:
        """Every object under ``prefix`` (or the object itself): ``(relative key, size,
        version token)``; the token (ETag or mtime) changes when the content does."""
        with self._mapped(f"listing {prefix or self.url}"):
            return self._backend.find(prefix)

    def download(self, key: str, dest: str) -> None:
        """Copy one object to the local path ``dest`` (no verification: no hash is known)."""
        with self._mapped(f"downloading {key or self.url}"):
            self._backend.get_file(key, dest)

    # -- blobs --------------------------------------------------------------------------------
    def existing_blobs(self, blob_hashes: Iterable[str]) -> set[str]:
        """Which of ``blob_hashes`` the remote holds: in a pack (one listing of ``packs/``
        plus the indexes not read before), or as loose objects.

        Loose, few blobs: one HEAD each, in parallel. Many: one listing per shard they fall in, when
        the shards are small enough (estimated from the first shard's listing) that listing
        costs fewer requests than a HEAD per blob; a remote holding millions of blobs is asked
        blob by blob instead.
        """
        wanted_set = set(blob_hashes)
        if not wanted_set:
            return set()
        packed = self.packed_blobs(wanted_set)
        return packed | self._existing_loose(sorted(wanted_set - packed))

    def packed_blobs(self, blob_hashes: Iterable[str]) -> set[str]:
        """Which of ``blob_hashes`` are in a remote pack (after one look at ``packs/``)."""
        self.packs.refresh()
        return self.packs.packed(set(blob_hashes))

    def _existing_loose(self, wanted: list[str]) -> set[str]:
        if not wanted:
            return set()
        by_shard: dict[str, list[str]] = {}
        for blob_hash in wanted:
            by_shard.setdefault(blob_hash[:2], []).append(blob_hash)
        if len(wanted) >= HEAD_BELOW:
            shards = sorted(by_shard)
            first = set(self.list_files(f"objects/{shards[0]}"))
            estimated_total = 256 * len(first)
            whole_listing_pages = estimated_total // 1000 + 1
            if whole_listing_pages * self.config.jobs <= len(shards):
                # A small remote: one listing of every blob is fewest requests.
                with self._mapped("listing objects"):
                    listed = set(self._backend.list_tree("objects"))
                return {h for h in wanted if f"{h[:2]}/{h[2:]}" in listed}
            pages_per_shard = len(first) // 1000 + 1
            if len(wanted) >= 2 * len(shards) and pages_per_shard * len(shards) * 4 <= len(wanted):
                rest = self.parallel(lambda s: set(self.list_files(f"objects/{s}")), shards[1:])
                found: set[str] = set()
                for shard, names in zip(shards, [first, *rest], strict=True):
                    found.update(h for h in by_shard[shard] if h[2:] in names)
                return found
        present = self.parallel(lambda h: self.exists(blob_key(h)), wanted)
        return {h for h, there in zip(wanted, present, strict=True) if there}

    def upload_blobs(
        self,
        store: BlobStore,
        blobs: Mapping[str, int],
        progress: ProgressCallback | None = None,
    ) -> None:
        """Copy blobs from the local store: small ones (under the store's pack threshold,
        when at least ``PACK_MIN_BLOBS`` of them) as packs, the others one object each, in
        parallel, large ones in parts. Each is checked against its hash before it becomes
        visible on the remote (a corrupted local blob is never spread); a multipart upload
        hashes the parts it sends and completes only if they match."""
        meter = _Meter(sum(blobs.values()), progress)
        small = {h: s for h, s in blobs.items() if s < store.pack_threshold}
        if len(small) >= PACK_MIN_BLOBS:
            self.packs.upload(store, small, meter.add)
            blobs = {h: s for h, s in blobs.items() if h not in small}

        def upload(blob_hash: str) -> None:
            with store.local_file(blob_hash) as path:
                upload_file(blob_hash, path)

        def upload_file(blob_hash: str, path: Path) -> None:
            size = blobs[blob_hash]

            def check(sent_digest: str | None) -> None:  # before the object is visible
                try:
                    actual = sent_digest or hash_file(path, size)
                except FileNotFoundError:
                    raise BlobMissing(f"blob {blob_hash} is missing from the local store") from None
                if actual != blob_hash:
                    raise BlobCorrupted(
                        f"local blob {blob_hash} is corrupted (its content no longer matches); "
                        "nothing of it was pushed; run 'assay verify' to list affected bundles"
                    )

            if not path.exists():
                check(None)
            with self._mapped(f"uploading blob {blob_hash[:12]}"):
                self._backend.put_file(str(path), blob_key(blob_hash), size, check)
            meter.add(size)

        # Largest first: a big file's parts overlap the small files' requests.
        order = sorted(blobs, key=lambda h: -blobs[h])
        self.parallel(upload, order)

    def download_blobs(
        self,
        store: BlobStore,
        blobs: Mapping[str, int],
        progress: ProgressCallback | None = None,
    ) -> None:
        """Copy blobs into the local store, each verified against its hash before it is
        published there: a corrupted or truncated remote object is refused and leaves nothing
        behind. Blobs in remote packs are read by byte ranges (``RemotePacks.download``); a
        refused one does not stop the others. The caller holds ``store.writing()`` (so ``gc``
        keeps the temp files and its unfinished pack)."""
        meter = _Meter(sum(blobs.values()), progress)
        located = {h: self.packs.locate(h) for h in blobs}
        if any(location is None for location in located.values()):
            self.packs.refresh()
            located = {h: self.packs.locate(h) for h in blobs}
        packed = {h: loc for h, loc in located.items() if loc is not None}
        blobs = {h: s for h, s in blobs.items() if h not in packed}
        refused: AssayError | None = None
        if packed:
            try:
                self.packs.download(store, packed, meter.add)
            except (BlobCorrupted, BlobMissing) as exc:
                refused = exc  # raised once the loose blobs are in too

        def download(blob_hash: str) -> None:
            temp = store.incoming_path(blob_hash)
            try:
                with self._mapped(f"downloading blob {blob_hash[:12]}"):
                    try:
                        self._backend.get_file(blob_key(blob_hash), str(temp), blobs[blob_hash])
                    except FileNotFoundError:
                        raise BlobMissing(
                            f"blob {blob_hash} is missing from remote {self.describe()}"
                        ) from None
                if not store.adopt(temp, blob_hash):
                    raise RemoteObjectCorrupted(
                        f"remote object {blob_key(blob_hash)} on {self.describe()} is corrupted "
                        "or truncated (its content does not match its hash); it was refused "
                        "and nothing local was changed"
                    )
            except OSError as exc:
                raise storage_error(exc, f"downloading blob {blob_hash[:12]}") from None
            finally:
                _unlink_quietly(temp)
            meter.add(blobs[blob_hash])

        self.parallel(download, sorted(blobs, key=lambda h: -blobs[h]))
        if refused is not None:
            raise refused

    # -- parallelism --------------------------------------------------------------------------
    def parallel(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) ...]`` on ``config.jobs`` threads; the first error stops what has not
        started and is raised once the running calls end."""
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        results: list[Any] = [None] * len(items)
        with ThreadPoolExecutor(max_workers=min(self.config.jobs, len(items))) as pool:
            futures: dict[Future[R], int] = {
                pool.submit(fn, item): i for i, item in enumerate(items)
            }
            _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            wait(pending)
            for future in futures:
                if future.cancelled():
                    continue
                error = future.exception()
                if error is not None:
                    raise error
            for future, index in futures.items():
                results[index] = future.result()
        return results


class _Meter:
    """Thread-safe byte counter feeding a ``progress(done, total)`` callback."""

    def __init__(self, total: int, progress: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self.progress = progress
        self._lock = threading.Lock()
        if progress is not None:
            progress(0, total)

    def add(self, size: int) -> None:
        if self.progress is None:
            return
        with self._lock:
            self.done += size
            self.progress(self.done, self.total)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
