"""The backends of a remote: a local folder (``file://``), S3 (botocore for small objects,
s3fs for multipart transfers of large ones), and any other fsspec file system.

Each backend offers the same few operations on keys relative to the remote root; errors are
left as Python/botocore exceptions for ``RemoteStore`` to map to Assay errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import socket
import threading
import uuid as uuid_module
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.core.errors import InvalidInput, MissingExtra, RemoteNotFound

#: Raises when the source is not what it should be; given the BLAKE3 digest of the bytes
#: actually sent when the backend computed it on the way, else it hashes the source itself.
Check = Callable[[str | None], None] | None

#: Multipart part size; on S3, objects of twice this or more go through s3fs's multipart
#: upload and ranged parallel download, smaller ones through one botocore request.
PART_BYTES = 8 * 1024 * 1024
#: Parts of one large file in flight at once.
PART_CONCURRENCY = 10
#: Below this many blobs, existence is checked one HEAD per blob (in parallel).
HEAD_BELOW = 64
_TEMP_SUFFIX = ".part"
_NO_LINK_ERRNOS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


def _env_number(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise InvalidInput(f"{name}={raw!r} must be at least {minimum:g}")
    return value


@dataclass(frozen=True)
class RemoteConfig:
    """Timeouts, retries and parallelism for remote transfers (from ``ASSAY_REMOTE_*``)."""

    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    retries: int = 3
    jobs: int = 16

    @classmethod
    def from_env(cls) -> RemoteConfig:
        return cls(
            connect_timeout=_env_number("ASSAY_REMOTE_CONNECT_TIMEOUT", 5.0, 0.1),
            read_timeout=_env_number("ASSAY_REMOTE_READ_TIMEOUT", 60.0, 0.1),
            retries=int(_env_number("ASSAY_REMOTE_RETRIES", 3, 1)),
            jobs=int(_env_number("ASSAY_REMOTE_JOBS", 16, 1)),
        )


def blob_key(blob_hash: str) -> str:
    return f"objects/{blob_hash[:2]}/{blob_hash[2:]}"


def normalize_url(url: str) -> str:
    """The remote URL in canonical form: a scheme, no trailing slash; plain paths become
    ``file://`` URLs (absolute)."""
    text = url.strip()
    if not text:
        raise InvalidInput("a remote URL is required (s3://bucket/prefix, file:///path, ...)")
    if "://" not in text:
        return "file://" + os.path.abspath(os.path.expanduser(text))
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    rest = rest.rstrip("/")
    if scheme == "file":
        if not rest.startswith("/"):
            raise InvalidInput(f"remote URL {url!r}: a file:// URL needs an absolute path")
        return "file://" + os.path.normpath(rest)
    if not rest:
        raise InvalidInput(f"remote URL {url!r} names no bucket or container")
    return f"{scheme}://{rest}"


# -- backends -------------------------------------------------------------------------------
class LocalBackend:
    """A folder (a shared drive): temp name + rename for blobs, ``link()`` for no-clobber."""

    conditional_writes = "link"

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return f"file://{self.root}"

    def probe(self, create: bool) -> None:
        if self.root.is_dir():
            return
        if self.root.exists():
            raise InvalidInput(f"remote {self.describe()} is not a directory")
        if create and self.root.parent.is_dir():
            self.root.mkdir(exist_ok=True)
            return
        raise RemoteNotFound(
            f"remote folder {self.root} does not exist"
            + ("" if create else "; is the shared drive mounted?")
        )

    def _path(self, key: str) -> Path:
        return self.root / key

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def list_files(self, prefix: str) -> list[str]:
        try:
            entries = list(os.scandir(self._path(prefix)))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))

    def list_dirs(self, prefix: str) -> list[str]:
        try:
            entries = list(os.scandir(self._path(prefix)))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))

    def _temp(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(f".{final.name[:16]}.{uuid_module.uuid4().hex[:12]}{_TEMP_SUFFIX}")

    def put_file(self, source: str, key: str, size: int, check: Check = None) -> None:
        final = self._path(key)
        temp = self._temp(final)
        try:
            shutil.copyfile(source, temp)
            if check is not None:
                check(None)
            os.replace(temp, final)
        finally:
            _unlink_quietly(temp)

    def put_new(self, key: str, data: bytes) -> bool:
        final = self._path(key)
        temp = self._temp(final)
        try:
            temp.write_bytes(data)
            try:
                os.link(temp, final)  # atomic, and fails when the name exists: no clobber
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in _NO_LINK_ERRNOS:
                    raise
            # No hard links on this file system: exclusive create of the final name. A reader
            # may then see a partly written document; readers skip documents that do not parse.
            try:
                fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return True
        finally:
            _unlink_quietly(temp)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def get_file(self, key: str, dest: str, size: int | None = None) -> None:
        shutil.copyfile(self._path(key), dest)

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            _unlink_quietly(self._path(key))

    def list_tree(self, prefix: str) -> list[str]:
        return [relative for relative, _size, _token in self.find(prefix)]

    def find(self, prefix: str) -> list[tuple[str, int, str]]:
        base = self._path(prefix)
        if base.is_file():
            stat = base.stat()
            return [("", stat.st_size, str(stat.st_mtime_ns))]
        found = []
        for directory, _dirs, names in os.walk(base):
            for name in names:
                if name.startswith(".") and name.endswith(_TEMP_SUFFIX):
                    continue
                path = Path(directory) / name
                stat = path.stat()
                found.append(
                    (path.relative_to(base).as_posix(), stat.st_size, str(stat.st_mtime_ns))
                )
        return sorted(found)


class FsspecBackend:
    """Any fsspec file system; S3 (s3fs) gets conditional creates and multipart settings."""

    def __init__(self, url: str, options: Mapping[str, Any], config: RemoteConfig) -> None:
        import fsspec

        self.url = url
        self.protocol = url.partition("://")[0]
        self.is_s3 = self.protocol in ("s3", "s3a")
        self.endpoint = (
            options.get("endpoint_url")
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or (os.environ.get("AWS_ENDPOINT_URL"))
        )
        storage: dict[str, Any] = {"skip_instance_cache": True}
        if self.is_s3:
            storage["use_listings_cache"] = False
            storage["config_kwargs"] = {
                "connect_timeout": config.connect_timeout,
                "read_timeout": config.read_timeout,
                # s3fs retries (with back-off); botocore's own retries would multiply them.
                "retries": {"total_max_attempts": 1},
                "max_pool_connections": max(10, config.jobs * 2),
            }
            if self.endpoint:
                storage["endpoint_url"] = self.endpoint
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **storage)
        except ImportError as exc:
            raise MissingExtra(f"remote {url} needs an extra package: {exc}") from None
        except ValueError as exc:
            raise InvalidInput(f"remote {url}: {exc}") from None
        self.root = self.root.rstrip("/")
        self.conditional_writes = "if-none-match" if self.is_s3 else "new-names-only"
        if self.is_s3:
            self.fs.retries = config.retries
            self._drop_expect_header()

    def _drop_expect_header(self) -> None:
        """aiohttp waits for a ``100 Continue`` with no timeout, so a server that accepts the
        connection and never answers would hang a PUT forever; without the header the read
        timeout applies."""
        from fsspec.asyn import sync

        sync(self.fs.loop, self.fs.set_session)

        def drop(request: Any, **_kwargs: Any) -> None:
            if "Expect" in request.headers:
                del request.headers["Expect"]

        self.fs.s3.meta.events.register("before-sign.s3", drop)

    def describe(self) -> str:
        return self.url + (f" (endpoint {self.endpoint})" if self.endpoint else "")

    @property
    def bucket(self) -> str:
        return self.root.split("/", 1)[0]

    def probe(self, create: bool) -> None:
        if self.is_s3:
            from fsspec.asyn import sync

            try:
                sync(self.fs.loop, self.fs._call_s3, "head_bucket", Bucket=self.bucket)
            except FileNotFoundError:
                raise RemoteNotFound(self._no_bucket()) from None
            self.fs.find(self._path("contexts"), maxdepth=1)  # list permission, too
            return
        if not self.fs.exists(self.root):
            if create:
                self.fs.makedirs(self.root, exist_ok=True)
            else:
                raise RemoteNotFound(f"nothing at remote {self.describe()}")

    def _no_bucket(self) -> str:
        return (
            f"bucket {self.bucket!r} does not exist at {self.endpoint or 'the default endpoint'}; "
            "create it first (e.g. 'aws s3 mb s3://" + self.bucket + "')"
        )

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def _ls(self, prefix: str) -> list[dict[str, Any]]:
        try:
            return list(self.fs.ls(self._path(prefix), detail=True))
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower():
                raise
            return []

    def list_files(self, prefix: str) -> list[str]:
        return sorted(
            e["name"].rstrip("/").rsplit("/", 1)[-1]
            for e in self._ls(prefix)
            if e.get("type") == "file" and not e["name"].rsplit("/", 1)[-1].startswith(".")
        )

    def list_dirs(self, prefix: str) -> list[str]:
        return sorted(
            e["name"].rstrip("/").rsplit("/", 1)[-1]
            for e in self._ls(prefix)
            if e.get("type") == "directory"
        )

    def put_file(self, source: str, key: str, size: int, check: Check = None) -> None:
        if check is not None:
            check(None)
        if self.is_s3:
            self.fs.put_file(
                source, self._path(key), chunksize=PART_BYTES, max_concurrency=PART_CONCURRENCY
            )
        else:
            self.fs.put_file(source, self._path(key))

    def put_new(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if self.conditional_writes == "if-none-match":
            try:
                self.fs.pipe_file(path, data, mode="create")
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.ENOSYS, errno.EINVAL):
                    raise
                # The server does not implement conditional writes: the documented safe path
                # (every key written this way is new: a uuid or a random suffix).
                self.conditional_writes = "new-names-only"
        if self.fs.exists(path):
            return False
        self.fs.pipe_file(path, data)
        return True

    def get_bytes(self, key: str) -> bytes:
        return bytes(self.fs.cat_file(self._path(key)))

    def get_file(self, key: str, dest: str, size: int | None = None) -> None:
        self.fs.get_file(self._path(key), dest)

    def delete(self, keys: Sequence[str]) -> None:
        if keys:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm([self._path(k) for k in keys])

    def list_tree(self, prefix: str) -> list[str]:
        return [relative for relative, _size, _token in self.find(prefix)]

    def find(self, prefix: str) -> list[tuple[str, int, str]]:
        base = self._path(prefix)
        try:
            info = self.fs.info(base)
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower():
                raise
            return []
        if info.get("type") == "file":
            return [("", int(info["size"]), _version_token(info))]
        found = []
        for path, detail in self.fs.find(base, detail=True).items():
            relative = path[len(base) :].lstrip("/")
            if relative:
                found.append((relative, int(detail["size"]), _version_token(detail)))
        return sorted(found)


class S3Backend(FsspecBackend):
    """S3: small objects through a botocore client on the caller's threads (about twice the
    requests per second of s3fs's single event loop here); large files through s3fs's
    multipart upload and ranged parallel download."""

    def __init__(self, url: str, options: Mapping[str, Any], config: RemoteConfig) -> None:
        # No s3fs here: every operation below is one botocore call (or a few on threads).
        self.url = url
        self.protocol = url.partition("://")[0]
        self.is_s3 = True
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
            self._multipart_upload(source, key, size, check)
            return
        if check is not None:
            check(None)
        with open(source, "rb") as handle:
            self._call("put_object", Key=self._key(key), Body=handle.read())

    def _multipart_upload(self, source: str, key: str, size: int, check: Check) -> None:
        """Parts of ``PART_BYTES`` read and sent by ``PART_CONCURRENCY`` threads (hashing for
        the signature runs outside the GIL, so threads beat one event loop here). The parts
        are BLAKE3-hashed in order as they are read; ``check`` gets that digest once they are
        sent, and the upload completes (becomes visible) only if it passes."""
        object_key = self._key(key)
        # CRC32 per part, checked by the server, as s3transfer does: end-to-end integrity of
        # each part (and moto then finishes a 1 GiB upload in about half the time).
        upload_id = self._call(
            "create_multipart_upload", Key=object_key, ChecksumAlgorithm="CRC32"
        )["UploadId"]

        digest = _OrderedHasher()

        def send(number: int) -> dict[str, Any]:
            with open(source, "rb") as handle:
                handle.seek((number - 1) * PART_BYTES)
                data = handle.read(PART_BYTES)
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
            self._call(
                "complete_multipart_upload",
                Key=object_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self._call("abort_multipart_upload", Key=object_key, UploadId=upload_id)
            raise

    def put_new(self, key: str, data: bytes) -> bool:
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


def _version_token(info: Mapping[str, Any]) -> str:
    """What changes when an object's content changes: its ETag, else its modification time."""
    for key in ("ETag", "etag", "md5Hash", "mtime", "LastModified", "last_modified", "created"):
        if info.get(key):
            return f"{key}={info[key]}"
    return ""


# -- errors ---------------------------------------------------------------------------------
def unreachable_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [
        ConnectionError,
        TimeoutError,
        socket.timeout,
        asyncio.TimeoutError,
    ]
    with contextlib.suppress(ImportError):
        from botocore import exceptions as boto

        types += [
            boto.EndpointConnectionError,
            boto.ConnectTimeoutError,
            boto.ReadTimeoutError,
            boto.ConnectionClosedError,
            boto.ConnectionError,
        ]
    with contextlib.suppress(ImportError):
        from fsspec.exceptions import FSTimeoutError

        types.append(FSTimeoutError)
    with contextlib.suppress(ImportError):
        import aiohttp

        types.append(aiohttp.ClientConnectionError)
    return tuple(types)


def no_credentials_types() -> tuple[type[BaseException], ...]:
    with contextlib.suppress(ImportError):
        from botocore import exceptions as boto

        return (boto.NoCredentialsError, boto.PartialCredentialsError)
    return ()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


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
