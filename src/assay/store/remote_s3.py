"""The S3 backend of a remote: botocore on the caller's threads.

Small objects take one request each (about twice the requests per second of s3fs's single
event loop here); large files go as multipart uploads of ``PART_BYTES`` parts and come back as
a few ranged GETs, both on ``PART_CONCURRENCY`` threads, with CRC32 checksums per part as
s3transfer sends them. No-clobber creates use ``If-None-Match: *``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from assay.core.errors import MissingExtra, RemoteNotFound
from assay.store.remote_backends import (
    PART_BYTES,
    PART_CONCURRENCY,
    Check,
    FsspecBackend,
    RemoteConfig,
)


class S3Backend(FsspecBackend):
    """S3 and S3-compatible services, through a botocore client used from many threads."""

    def __init__(self, url: str, options: Mapping[str, Any], config: RemoteConfig) -> None:
        # No s3fs here: every operation below is one botocore call (or a few on threads).
        self.url = url
        self.protocol = url.partition("://")[0]
        self.conditional_writes = "if-none-match"
        self.endpoint = (
            options.get("endpoint_url")
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        self.root = url.partition("://")[2].strip("/")
        try:
            import botocore.session
            from botocore.config import Config
        except ImportError as exc:
            raise MissingExtra(
                f"remote {url} needs botocore (installed with s3fs): {exc}"
            ) from None

        session = botocore.session.Session()
        self.client = session.create_client(
            "s3",
            endpoint_url=self.endpoint or None,
            config=Config(
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
                retries={"total_max_attempts": config.retries, "mode": "standard"},
                max_pool_connections=max(10, config.jobs * 2),
            ),
        )
        self.bucket_name, _, prefix = self.root.partition("/")
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        if not key:
            return self.prefix
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError
        from s3fs.errors import translate_boto_error

        try:
            return getattr(self.client, method)(Bucket=self.bucket_name, **kwargs)
        except ClientError as exc:
            raise translate_boto_error(exc) from None

    def probe(self, create: bool) -> None:
        try:
            self._call("head_bucket")
        except FileNotFoundError:
            raise RemoteNotFound(self._no_bucket()) from None
        self._call("list_objects_v2", Prefix=self._key("contexts/"), MaxKeys=1)

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=self._key(key))
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower():
                raise
            return False
        return True

    def _listing(self, prefix: str, delimiter: bool) -> tuple[list[str], list[str]]:
        base = self._key(prefix).rstrip("/") + "/"
        files: list[str] = []
        dirs: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": base}
            if delimiter:
                kwargs["Delimiter"] = "/"
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            files.extend(item["Key"][len(base) :] for item in page.get("Contents", []))
            dirs.extend(
                item["Prefix"][len(base) :].rstrip("/") for item in page.get("CommonPrefixes", [])
            )
            if not page.get("IsTruncated"):
                return files, dirs
            token = page["NextContinuationToken"]

    def list_files(self, prefix: str) -> list[str]:
        files, _dirs = self._listing(prefix, delimiter=True)
        return sorted(f for f in files if f and not f.startswith("."))

    def list_dirs(self, prefix: str) -> list[str]:
        _files, dirs = self._listing(prefix, delimiter=True)
        return sorted(dirs)

    def list_tree(self, prefix: str) -> list[str]:
        files, _dirs = self._listing(prefix, delimiter=False)
        return sorted(files)

    def put_file(self, source: str, key: str, size: int, check: Check = None) -> None:
        if size >= 2 * PART_BYTES:

            def read_part(number: int) -> bytes:
                with open(source, "rb") as handle:
                    handle.seek((number - 1) * PART_BYTES)
                    return handle.read(PART_BYTES)

            self._multipart_upload(read_part, key, size, check)
            return
        if check is not None:
            check(None)
        with open(source, "rb") as handle:
            self._call("put_object", Key=self._key(key), Body=handle.read())

    def _multipart_upload(
        self,
        read_part: Callable[[int], bytes],
        key: str,
        size: int,
        check: Check,
        create_only: bool = False,
    ) -> bool:
        """Parts of ``PART_BYTES`` read and sent by ``PART_CONCURRENCY`` threads (hashing for
        the signature runs outside the GIL, so threads beat one event loop here). The parts
        are BLAKE3-hashed in order as they are read; ``check`` gets that digest once they are
        sent, and the upload completes (becomes visible) only if it passes. ``create_only``:
        completed with ``If-None-Match: *``; False when the key exists already."""
        object_key = self._key(key)
        # CRC32 per part, checked by the server, as s3transfer does: end-to-end integrity of
        # each part (and moto then finishes a 1 GiB upload in about half the time).
        upload_id = self._call(
            "create_multipart_upload", Key=object_key, ChecksumAlgorithm="CRC32"
        )["UploadId"]

        digest = _OrderedHasher()

        def send(number: int) -> dict[str, Any]:
            data = read_part(number)
            digest.add(number, data)
            response = self._call(
                "upload_part",
                Key=object_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="CRC32",
            )
            part = {"PartNumber": number, "ETag": response["ETag"]}
            if response.get("ChecksumCRC32"):
                part["ChecksumCRC32"] = response["ChecksumCRC32"]
            return part

        count = (size + PART_BYTES - 1) // PART_BYTES
        try:
            with ThreadPoolExecutor(max_workers=min(PART_CONCURRENCY, count)) as pool:
                parts = list(pool.map(send, range(1, count + 1)))
            if check is not None:
                check(digest.hexdigest(count))  # of the very bytes sent, not a re-read
            if self._complete(object_key, upload_id, parts, create_only):
                return True
            self._call("abort_multipart_upload", Key=object_key, UploadId=upload_id)
            return False
        except BaseException:
            with contextlib.suppress(Exception):
                self._call("abort_multipart_upload", Key=object_key, UploadId=upload_id)
            raise

    def _complete(
        self, object_key: str, upload_id: str, parts: list[dict[str, Any]], create_only: bool
    ) -> bool:
        extra: dict[str, Any] = {}
        if create_only and self.conditional_writes == "if-none-match":
            extra["IfNoneMatch"] = "*"
        try:
            self._call(
                "complete_multipart_upload",
                Key=object_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **extra,
            )
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if not extra or exc.errno not in (errno.ENOSYS, errno.EINVAL):
                raise
            # The server does not do conditional completes: the documented safe path (a
            # create-only key is new by construction).
            self.conditional_writes = "new-names-only"
            return self._complete(object_key, upload_id, parts, create_only)

    def put_new(self, key: str, data: bytes) -> bool:
        if len(data) >= 2 * PART_BYTES:  # a remote pack: in parts, on threads
            if self.conditional_writes != "if-none-match" and self.exists(key):
                return False
            view = memoryview(data)

            def read_part(number: int) -> bytes:
                return bytes(view[(number - 1) * PART_BYTES : number * PART_BYTES])

            return self._multipart_upload(read_part, key, len(data), None, create_only=True)
        if self.conditional_writes == "if-none-match":
            try:
                self._call("put_object", Key=self._key(key), Body=data, IfNoneMatch="*")
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.ENOSYS, errno.EINVAL):
                    raise
                self.conditional_writes = "new-names-only"  # the documented safe path
        if self.exists(key):
            return False
        self._call("put_object", Key=self._key(key), Body=data)
        return True

    def get_bytes(self, key: str) -> bytes:
        response = self._call("get_object", Key=self._key(key))
        return bytes(response["Body"].read())

    def get_file(self, key: str, dest: str, size: int | None = None) -> None:
        if size is not None and size >= 2 * PART_BYTES:
            self._ranged_download(key, dest)
            return
        response = self._call("get_object", Key=self._key(key))
        with open(dest, "wb") as handle:
            for chunk in response["Body"].iter_chunks(1024 * 1024):
                handle.write(chunk)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        from botocore.exceptions import ClientError

        end = start + length - 1
        try:
            response = self.client.get_object(
                Bucket=self.bucket_name, Key=self._key(key), Range=f"bytes={start}-{end}"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # the object is shorter than ``start``: truncated
            from s3fs.errors import translate_boto_error

            raise translate_boto_error(exc) from None
        return bytes(response["Body"].read())

    def _ranged_download(self, key: str, dest: str) -> None:
        """``PART_CONCURRENCY`` ranges (at least ``PART_BYTES`` each) fetched on threads into
        ``dest``: few requests, all in flight at once. The object's actual size is used, so a
        truncated object fails its hash check."""
        object_key = self._key(key)
        size = int(self._call("head_object", Key=object_key)["ContentLength"])
        span = max(PART_BYTES, -(-size // PART_CONCURRENCY))
        with open(dest, "wb") as handle:
            handle.truncate(size)

        def fetch(start: int) -> None:
            end = min(size, start + span) - 1
            response = self._call("get_object", Key=object_key, Range=f"bytes={start}-{end}")
            written = 0
            with open(dest, "r+b") as handle:
                handle.seek(start)
                for chunk in response["Body"].iter_chunks(1024 * 1024):
                    handle.write(chunk)
                    written += len(chunk)
            if written != end - start + 1:
                raise OSError(errno.EIO, f"short read of {key} at {start}")

        starts = list(range(0, size, span))
        with ThreadPoolExecutor(max_workers=max(1, min(PART_CONCURRENCY, len(starts)))) as pool:
            list(pool.map(fetch, starts))

    def find(self, prefix: str) -> list[tuple[str, int, str]]:
        object_key = self._key(prefix)
        if object_key:
            try:
                head = self._call("head_object", Key=object_key)
                return [("", int(head["ContentLength"]), f"ETag={head.get('ETag', '')}")]
            except FileNotFoundError as exc:
                if "bucket" in str(exc).lower():
                    raise
        base = object_key.rstrip("/") + "/" if object_key else ""
        found: list[tuple[str, int, str]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": base}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            for item in page.get("Contents", []):
                relative = item["Key"][len(base) :]
                if relative and not relative.endswith("/"):
                    found.append((relative, int(item["Size"]), f"ETag={item.get('ETag', '')}"))
            if not page.get("IsTruncated"):
                return sorted(found)
            token = page["NextContinuationToken"]

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
            self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})


class _OrderedHasher:
    """BLAKE3 over parts that arrive out of order from several threads: each part waits until
    the ones before it are hashed (reads run nearly in order, so few wait)."""

    def __init__(self) -> None:
        import blake3

        self._hasher = blake3.blake3()
        self._waiting: dict[int, bytes] = {}
        self._next = 1
        self._lock = threading.Lock()

    def add(self, number: int, data: bytes) -> None:
        with self._lock:
            self._waiting[number] = data
            while self._next in self._waiting:
                self._hasher.update(self._waiting.pop(self._next))
                self._next += 1

    def hexdigest(self, parts: int) -> str | None:
        with self._lock:
            return self._hasher.hexdigest() if self._next == parts + 1 else None
