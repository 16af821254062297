"""Datafile: one file, where it is, what is in it (hash, size), and what it means (tags, labels).

A Datafile is a value: its metadata cannot be changed in place (``replace`` makes a changed
copy), so one held in a FilterSet, a Dataset or a Manifest cannot drift from what was validated,
and a caller's ``tags`` dict or ``labels`` set is copied rather than shared. The content fields
(``hash_value``, ``size``) are read from the local file on first use unless given, because
hashing is the only I/O the core allows itself; a remote file's content fields are known only
when given.
"""

from __future__ import annotations

import contextlib
import copy
import os
import posixpath
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from assay.core import hashing
from assay.core.errors import InvalidInput, InvalidLabel, InvalidTag, PathNotFound
from assay.core.names import check_labels, check_tags

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

#: The primitive form's keys, in the order ``to_primitive`` writes them.
PRIMITIVE_KEYS = ("path", "tags", "labels", "timestamp", "hash_value", "size", "relative_path")


def url_protocol(text: str) -> str | None:
    """The lower-case protocol of a ``scheme://`` URL, or None for a plain path."""
    match = _URL.match(text)
    return match.group(1).lower() if match else None


def file_url_path(url: str) -> str:
    """The local path a ``file://`` URL names."""
    return unquote(urlsplit(url).path)


def _freeze_tags(tags: Mapping[str, Any] | None) -> Mapping[str, Any]:
    checked = check_tags(tags)
    for key, value in checked.items():
        try:
            hashing.canonical_json(value)
        except (TypeError, ValueError):
            raise InvalidTag(
                f"tag {key!r}: value {value!r} is not JSON (use strings, numbers, booleans, "
                "null, lists and objects)"
            ) from None
    return MappingProxyType(copy.deepcopy(checked))


def _freeze_labels(labels: Iterable[str] | None) -> frozenset[str]:
    if labels is not None and not isinstance(labels, str | Iterable):
        raise InvalidLabel(
            f"labels must be a list or set of strings (or one space-separated string), "
            f"not {labels!r}"
        )
    if isinstance(labels, Mapping):
        raise InvalidLabel(f"labels must be a list or set of strings, not a mapping: {labels!r}")
    return frozenset(check_labels(labels))


def _check_timestamp(timestamp: Any) -> float | None:
    if timestamp is None:
        return None
    if isinstance(timestamp, datetime):
        return timestamp.timestamp()
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise InvalidInput(
            f"invalid timestamp {timestamp!r}: give seconds since the epoch or a datetime"
        )
    return float(timestamp)


def _check_relative_path(relative_path: str | None) -> str | None:
    if relative_path is None:
        return None
    parts = relative_path.split("/") if isinstance(relative_path, str) else []
    if (
        not parts
        or relative_path.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
        or "\\" in relative_path
    ):
        raise InvalidInput(
            f"invalid relative path {relative_path!r}: use '/'-separated names inside the "
            "dataset, without '.', '..' or a leading '/'"
        )
    return relative_path


class Datafile:
    """One local or remote file and its metadata.

    ``path`` is a local path or a URL (``s3://``, ``gs://``, ``file://``, ...). A ``file://`` URL
    is local: it has a ``local_path`` and can be opened. Equality compares the path and the
    metadata (relative path, tags, labels, timestamp), not the content fields, which are derived
    from the file at ``path``.
    """

    __slots__ = (
        "_hash_value",
        "_labels",
        "_local_path",
        "_path",
        "_relative_path",
        "_size",
        "_tags",
        "_timestamp",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        tags: Mapping[str, Any] | None = None,
        labels: Iterable[str] | None = None,
        timestamp: float | datetime | None = None,
        hash_value: str | None = None,
        size: int | None = None,
        relative_path: str | None = None,
    ) -> None:
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str) or not path.strip():
            raise InvalidInput(f"invalid datafile path {path!r}: give a file path or URL")
        if path.endswith(("/", os.sep)):
            raise InvalidInput(f"invalid datafile path {path!r}: it names a directory")
        if hash_value is not None and (not isinstance(hash_value, str) or not hash_value):
            raise InvalidInput(f"invalid hash_value {hash_value!r}: give a hex digest string")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise InvalidInput(f"invalid size {size!r}: give a number of bytes (>= 0)")
        self._path = path
        self._tags = _freeze_tags(tags)
        self._labels = _freeze_labels(labels)
        self._timestamp = _check_timestamp(timestamp)
        self._hash_value = hash_value
        self._size = size
        self._relative_path = _check_relative_path(relative_path)
        protocol = url_protocol(path)
        if protocol is None:
            self._local_path: str | None = os.path.abspath(path)
        elif protocol == "file":
            self._local_path = os.path.abspath(file_url_path(path))
        else:
            self._local_path = None

    # -- identity and metadata -------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def name(self) -> str:
        """The file's base name, e.g. ``a.csv``."""
        if self._local_path is not None:
            return os.path.basename(self._local_path)
        return posixpath.basename(urlsplit(self._path).path)

    @property
    def extension(self) -> str:
        """The extension without its dot (``"csv"``), as Octue's Datafile gives it."""
        return os.path.splitext(self.name)[1].lstrip(".")

    @property
    def tags(self) -> Mapping[str, Any]:
        """A read-only view; use ``replace(tags=...)`` for a changed copy."""
        return self._tags

    @property
    def labels(self) -> frozenset[str]:
        return self._labels

    @property
    def timestamp(self) -> float | None:
        return self._timestamp

    @property
    def local_path(self) -> str | None:
        """The absolute local path, or None for a remote file."""
        return self._local_path

    @property
    def is_url(self) -> bool:
        """True when ``path`` is a URL (``file://`` included), False for a plain local path."""
        return url_protocol(self._path) is not None

    @property
    def relative_path(self) -> str | None:
        """The ``/``-separated path inside its dataset, when known."""
        return self._relative_path

    # -- content ---------------------------------------------------------------------------

    @property
    def hash_value(self) -> str | None:
        """The BLAKE3 hex digest of the content: given, or computed once from the local file.

        None for a remote file whose hash was not given. PathNotFound if the local file is
        missing.
        """
        if self._hash_value is None and self._local_path is not None:
            self._hash_value = hashing.hash_file(self._require_local(), self.size)
        return self._hash_value

    @property
    def size(self) -> int | None:
        """The size in bytes: given, or read from the local file; None if remote and unknown."""
        if self._size is None and self._local_path is not None:
            self._size = os.stat(self._require_local()).st_size
        return self._size

    def _require_local(self) -> str:
        local = self._local_path
        assert local is not None, "callers check for a local path first"
        if not os.path.isfile(local):
            raise PathNotFound(f"datafile {self.name!r}: no file at {local}")
        return local

    @contextlib.contextmanager
    def open(self, mode: str = "r", **kwargs: Any) -> Iterator[IO[Any]]:
        """Open the local file like the built-in ``open``, as a context manager.

        Writing (``"w"``, ``"x"``) goes to a temporary file beside the target, renamed over it
        only when the block ends without an exception, so a failure never leaves a half-written
        file. Missing parent directories are created for any writing mode. Cached content fields
        are dropped after writing.
        """
        local = self._local_path
        if local is None:
            raise InvalidInput(
                f"datafile {self._path!r} is remote; download it (e.g. Manifest.download) "
                "and open the local copy"
            )
        writing = any(flag in mode for flag in "wxa+")
        if not writing:
            if not os.path.isfile(local):
                raise PathNotFound(f"datafile {self.name!r}: no file at {local}")
            with open(local, mode, **kwargs) as handle:
                yield handle
            return
        os.makedirs(os.path.dirname(local), exist_ok=True)
        self._hash_value = self._size = None
        if "a" in mode or "+" in mode:
            with open(local, mode, **kwargs) as handle:
                yield handle
            return
        if "x" in mode and os.path.exists(local):
            raise FileExistsError(local)
        descriptor, temporary = tempfile.mkstemp(
            dir=os.path.dirname(local), prefix=f".{os.path.basename(local)}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, mode.replace("x", "w"), **kwargs) as handle:
                yield handle
            os.replace(temporary, local)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    # -- values ----------------------------------------------------------------------------

    def replace(self, **changes: Any) -> Datafile:
        """A copy with some constructor arguments changed (tags and labels are re-validated).

        Changing ``path`` drops the known content fields unless new ones are given.
        """
        unknown = set(changes) - set(PRIMITIVE_KEYS)
        if unknown:
            raise InvalidInput(f"Datafile.replace: unknown field(s) {sorted(unknown)}")
        arguments: dict[str, Any] = {
            "path": self._path,
            "tags": self._tags,
            "labels": self._labels,
            "timestamp": self._timestamp,
            "relative_path": self._relative_path,
        }
        if "path" not in changes:
            arguments["hash_value"] = self._hash_value
            arguments["size"] = self._size
        arguments.update(changes)
        return Datafile(**arguments)

    def to_primitive(self) -> dict[str, Any]:
        """A JSON-able dict. Content fields are included when known or readable locally."""
        try:
            hash_value, size = self.hash_value, self.size
        except PathNotFound:
            hash_value, size = self._hash_value, self._size
        primitive: dict[str, Any] = {
            "path": self._path,
            "tags": copy.deepcopy(dict(self._tags)),
            "labels": sorted(self._labels),
            "timestamp": self._timestamp,
            "hash_value": hash_value,
            "size": size,
        }
        if self._relative_path is not None:
            primitive["relative_path"] = self._relative_path
        return primitive

    @classmethod
    def from_primitive(cls, data: Mapping[str, Any]) -> Datafile:
        """Build from ``to_primitive`` output or Octue's serialised datafile.

        Octue writes the location as ``path``, ``cloud_path`` or ``local_path``; other Octue keys
        (``id``, ``name``, ``sdk_version``, ...) are ignored. Octue's labels may be one
        space-separated string.
        """
        if not isinstance(data, Mapping):
            raise InvalidInput(f"datafile: expected an object, got {data!r}")
        location = next(
            (data[key] for key in ("path", "cloud_path", "local_path") if data.get(key)), None
        )
        if location is None:
            raise InvalidInput(f"datafile: no 'path' in {dict(data)!r}")
        return cls(
            path=location,
            tags=data.get("tags"),
            labels=data.get("labels"),
            timestamp=data.get("timestamp"),
            hash_value=data.get("hash_value"),
            size=data.get("size"),
            relative_path=data.get("relative_path"),
        )

    def _key(self) -> tuple[Any, ...]:
        return (
            self._path,
            self._relative_path,
            hashing.canonical_json(dict(self._tags)),
            self._labels,
            self._timestamp,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Datafile):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._path)

    def __repr__(self) -> str:
        return f"<Datafile({self.name!r})>"
