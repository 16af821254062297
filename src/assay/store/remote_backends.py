"""The backends of a remote: a local folder (``file://``) and any fsspec file system (S3 has
its own, botocore-based, in ``remote_s3``); plus the remote's settings and error types.

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
import uuid as uuid_module
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.core.errors import InvalidInput, MissingExtra, RemoteNotFound

#: Raises when the source is not what it should be; given the BLAKE3 digest of the bytes
#: actually sent when the backend computed it on the way, else it hashes the source itself.
Check = Callable[[str | None], None] | None

#: Multipart part size; on S3, objects of twice this or more go as a multipart upload and a
#: ranged parallel download, smaller ones as one request.
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
    #: A push's small blobs travel in remote packs of about this many bytes.
    pack_bytes: int = 32 << 20

    @classmethod
    def from_env(cls) -> RemoteConfig:
        return cls(
            connect_timeout=_env_number("ASSAY_REMOTE_CONNECT_TIMEOUT", 5.0, 0.1),
            read_timeout=_env_number("ASSAY_REMOTE_READ_TIMEOUT", 60.0, 0.1),
            retries=int(_env_number("ASSAY_REMOTE_RETRIES", 3, 1)),
            jobs=int(_env_number("ASSAY_REMOTE_JOBS", 16, 1)),
            pack_bytes=int(_env_number("ASSAY_REMOTE_PACK_BYTES", 32 << 20, 65536)),
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

    def get_range(self, key: str, start: int, length: int) -> bytes:
        fd = os.open(self._path(key), os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.pread(fd, length, start)
        finally:
            os.close(fd)

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
    """Any other fsspec file system (``gs://``, ``az://``, ``memory://``, ...). It has no
    portable no-clobber create, so it takes the documented safe path: check, then write
    (every key written that way is new by construction)."""

    conditional_writes = "new-names-only"

    def __init__(self, url: str, options: Mapping[str, Any], config: RemoteConfig) -> None:
        import fsspec

        self.url = url
        self.protocol = url.partition("://")[0]
        self.endpoint: str | None = options.get("endpoint_url")
        storage: dict[str, Any] = {"skip_instance_cache": True}
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **storage)
        except ImportError as exc:
            raise MissingExtra(f"remote {url} needs an extra package: {exc}") from None
        except ValueError as exc:
            raise InvalidInput(f"remote {url}: {exc}") from None
        self.root = self.root.rstrip("/")

    def describe(self) -> str:
        return self.url + (f" (endpoint {self.endpoint})" if self.endpoint else "")

    @property
    def bucket(self) -> str:
        return self.root.split("/", 1)[0]

    def probe(self, create: bool) -> None:
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
        self.fs.put_file(source, self._path(key))

    def put_new(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if self.fs.exists(path):
            return False
        self.fs.pipe_file(path, data)
        return True

    def get_bytes(self, key: str) -> bytes:
        return bytes(self.fs.cat_file(self._path(key)))

    def get_file(self, key: str, dest: str, size: int | None = None) -> None:
        self.fs.get_file(self._path(key), dest)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return bytes(self.fs.cat_file(self._path(key), start, start + length))

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
