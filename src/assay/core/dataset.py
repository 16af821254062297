"""Dataset: a set of Datafiles with relative paths, plus a name, tags and labels.

Every file in a dataset has a unique ``/``-separated relative path, because the dataset's
``content_hash`` is a Merkle root over ``(relative path, file hash, size)`` entries: equal content
gives an equal hash whatever order the files were added in. A dataset read from a local
directory takes its files' metadata from an Octue ``.octue`` file when there is one, so datasets
written by Octue keep their labels and tags.
"""

from __future__ import annotations

import copy
import json
import os
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from assay.core import hashing
from assay.core.datafile import Datafile, url_protocol
from assay.core.errors import (
    AssayError,
    FileNotInFilterSet,
    InvalidInput,
    MultipleFilesFound,
    PathNotFound,
)
from assay.core.filterset import FilterSet
from assay.core.names import check_labels, check_tags

#: Metadata files that describe a directory's dataset; never files of the dataset themselves.
METADATA_FILENAMES = frozenset({".octue", ".assay"})
OCTUE_METADATA_FILENAME = ".octue"


def _is_local(path: str) -> bool:
    return url_protocol(path) is None


def resolve_path(path: str, base_dir: str | None) -> str:
    """``path`` joined to ``base_dir`` when it is a relative local path; otherwise unchanged."""
    if base_dir is None or not _is_local(path) or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base_dir, path))


def _scan(root: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``(relative path, path)`` for every file under ``root``, sorted, metadata files skipped;
    and the relative directories (``""`` for the root) holding an Octue ``.octue`` file."""
    found: list[tuple[str, str]] = []
    described: list[str] = []
    for directory, subdirectories, filenames in os.walk(root):
        subdirectories.sort()
        relative_directory = os.path.relpath(directory, root).replace(os.sep, "/")
        relative_directory = "" if relative_directory == "." else relative_directory
        if OCTUE_METADATA_FILENAME in filenames:
            described.append(relative_directory)
        for filename in filenames:
            if filename not in METADATA_FILENAMES:
                relative = posixpath.join(relative_directory, filename)
                found.append((relative, os.path.join(directory, filename)))
    return sorted(found), described


class _DirectoryMetadata:
    """What Octue ``.octue`` files say about a directory's dataset and its files.

    The root's ``.octue`` may describe the dataset in any shape Octue has written:
    ``{"dataset": {...}}``, ``{"datasets": {key: {...}}}`` (one entry, or the one named like the
    directory), or a bare dataset ``{"name", "tags", "labels", "files": [...]}``; its file entries
    are matched by relative path, else by a unique base name. Any directory's ``.octue`` may hold
    Octue's per-file records ``{"datafiles": {filename: {"tags", "labels", "timestamp"}}}`` for
    the files beside it; these win over the dataset's file list. Entries naming absent files are
    ignored.
    """

    def __init__(self, root: str, described: list[str]) -> None:
        self.name: str | None = None
        self.tags: Mapping[str, Any] | None = None
        self.labels: Any = None
        self._by_relative: dict[str, Mapping[str, Any]] = {}
        self._by_basename: dict[str, list[Mapping[str, Any]]] = {}
        self._root = root
        if "" in described:
            self._load_dataset(self._read(""))
        for directory in described:
            self._load_datafiles(directory, self._read(directory))

    def _source(self, directory: str) -> str:
        return os.path.join(self._root, *directory.split("/"), OCTUE_METADATA_FILENAME)

    def _fail(self, directory: str, what: str) -> InvalidInput:
        return InvalidInput(f"dataset metadata {self._source(directory)}: {what}")

    def _read(self, directory: str) -> dict[str, Any]:
        try:
            with open(self._source(directory), encoding="utf-8") as handle:
                document = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise self._fail(directory, f"not readable JSON ({error})") from None
        if not isinstance(document, dict):
            raise self._fail(directory, f"expected a JSON object, got {type(document).__name__}")
        return document

    def _load_dataset(self, document: Mapping[str, Any]) -> None:
        section = self._dataset_section(document)
        self.name = section.get("name")
        self.tags = section.get("tags")
        self.labels = section.get("labels")
        files = section.get("files")
        files = [] if files is None else files
        if not isinstance(files, list):
            raise self._fail("", "'files' must be a list")
        for entry in files:
            if isinstance(entry, Mapping):
                self._index(entry)

    def _load_datafiles(self, directory: str, document: Mapping[str, Any]) -> None:
        datafiles = document.get("datafiles")
        datafiles = {} if datafiles is None else datafiles
        if not isinstance(datafiles, Mapping):
            raise self._fail(directory, "'datafiles' must be an object of file name to metadata")
        for filename, entry in datafiles.items():
            if isinstance(entry, Mapping) and isinstance(filename, str):
                self._by_relative[posixpath.join(directory, filename)] = entry

    def _dataset_section(self, document: Mapping[str, Any]) -> Mapping[str, Any]:
        if "dataset" in document:
            section = document["dataset"]
        elif "datasets" in document:
            section = self._pick_dataset(document["datasets"])
        else:
            section = document
        if not isinstance(section, Mapping):
            raise self._fail("", "the dataset entry must be an object")
        return section

    def _pick_dataset(self, datasets: Any) -> Any:
        if isinstance(datasets, Mapping):
            candidates = list(datasets.items())
        elif isinstance(datasets, list):
            candidates = [(None, entry) for entry in datasets]
        else:
            raise self._fail("", "'datasets' must be an object or a list")
        if len(candidates) == 1:
            return candidates[0][1]
        directory = os.path.basename(os.path.abspath(self._root))
        for key, entry in candidates:
            if key == directory or (isinstance(entry, Mapping) and entry.get("name") == directory):
                return entry
        raise self._fail(
            "", f"{len(candidates)} datasets are described and none is named {directory!r}"
        )

    def _index(self, entry: Mapping[str, Any]) -> None:
        location = next(
            (
                entry[key]
                for key in ("relative_path", "path", "local_path", "cloud_path", "name")
                if isinstance(entry.get(key), str)
            ),
            None,
        )
        if location is None:
            return
        if _is_local(location) and os.path.isabs(location):
            location = os.path.relpath(location, self._root).replace(os.sep, "/")
        self._by_relative[location] = entry
        self._by_basename.setdefault(posixpath.basename(location), []).append(entry)

    def for_file(self, relative_path: str) -> Mapping[str, Any]:
        if relative_path in self._by_relative:
            return self._by_relative[relative_path]
        matches = self._by_basename.get(posixpath.basename(relative_path), [])
        return matches[0] if len(matches) == 1 else {}

    def datafile(self, relative_path: str, path: str) -> Datafile:
        entry = self.for_file(relative_path)
        try:
            return Datafile(
                path=path,
                relative_path=relative_path,
                tags=entry.get("tags"),
                labels=entry.get("labels"),
                timestamp=entry.get("timestamp"),
            )
        except InvalidInput as error:
            raise type(error)(f"dataset metadata for {path}: {error.message}") from None


class Dataset:
    """Files plus a name, tags and labels; immutable once made.

    ``Dataset(path=directory)`` reads the directory's files recursively. Given ``files`` (Datafile
    objects or their primitive dicts), a file without a relative path gets one from its location
    under ``path``, else its base name. Listing a remote directory is the store's job, so a
    remote ``path`` without ``files`` gives an empty dataset that still records where it lives.
    """

    __slots__ = ("_files", "_labels", "_name", "_path", "_tags")

    def __init__(
        self,
        files: Iterable[Datafile | Mapping[str, Any]] | None = None,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        labels: Iterable[str] | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        if path is not None:
            if not isinstance(path, str | os.PathLike) or not os.fspath(path):
                raise InvalidInput(f"invalid dataset path {path!r}: give a directory path or URL")
            path = os.fspath(path)
        if name is not None and not isinstance(name, str):
            raise InvalidInput(f"invalid dataset name {name!r}: give a string")
        self._path: str | None = path
        if files is None and path is not None and _is_local(path):
            found, metadata = self._read_directory(path)
            name = name if name is not None else metadata.name
            tags = tags if tags is not None else metadata.tags
            labels = labels if labels is not None else metadata.labels
            datafiles = [metadata.datafile(rel, full) for rel, full in found]
        else:
            datafiles = [self._datafile(entry) for entry in files or []]
        self._name = name
        self._files: FilterSet[Datafile] = FilterSet(self._place(datafiles))
        self._tags: Mapping[str, Any] = MappingProxyType(copy.deepcopy(check_tags(tags)))
        self._labels = frozenset(check_labels(labels))

    @staticmethod
    def _read_directory(path: str) -> tuple[list[tuple[str, str]], _DirectoryMetadata]:
        if not os.path.exists(path):
            raise PathNotFound(f"dataset directory not found: {path}")
        if not os.path.isdir(path):
            raise InvalidInput(f"dataset path {path} is a file; give its directory")
        found, described = _scan(path)
        return found, _DirectoryMetadata(path, described)

    @staticmethod
    def _datafile(entry: Any) -> Datafile:
        if isinstance(entry, Datafile):
            return entry
        if isinstance(entry, Mapping):
            return Datafile.from_primitive(entry)
        if isinstance(entry, str | os.PathLike):
            return Datafile(path=entry)
        raise InvalidInput(f"dataset files must be Datafiles, dicts or paths, not {entry!r}")

    def _place(self, datafiles: list[Datafile]) -> list[Datafile]:
        """Give every file a relative path and refuse two files at the same one."""
        placed: dict[str, Datafile] = {}
        for datafile in datafiles:
            if datafile.relative_path is None:
                datafile = datafile.replace(relative_path=self._relative_path_of(datafile))
            relative = datafile.relative_path
            assert relative is not None
            if relative in placed and placed[relative] != datafile:
                owner = f"dataset {self.name!r}" if self.name else "dataset"
                raise InvalidInput(
                    f"{owner}: two files share the relative path {relative!r} "
                    f"({placed[relative].path} and {datafile.path})"
                )
            placed[relative] = datafile
        return list(placed.values())

    def _relative_path_of(self, datafile: Datafile) -> str:
        root = self._path
        if root is not None:
            if _is_local(root) and datafile.local_path is not None:
                inside = os.path.relpath(datafile.local_path, os.path.abspath(root))
                if not inside.startswith(os.pardir):
                    return inside.replace(os.sep, "/")
            elif datafile.path.startswith(root.rstrip("/") + "/"):
                return datafile.path[len(root.rstrip("/")) + 1 :]
        return datafile.name

    # -- accessors -------------------------------------------------------------------------

    @property
    def files(self) -> FilterSet[Datafile]:
        return self._files

    @property
    def name(self) -> str | None:
        """The given name, else the directory's base name, else None."""
        if self._name is not None:
            return self._name
        if self._path is None:
            return None
        if _is_local(self._path):
            return os.path.basename(os.path.abspath(self._path)) or None
        return posixpath.basename(urlsplit(self._path).path.rstrip("/")) or None

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def tags(self) -> Mapping[str, Any]:
        return self._tags

    @property
    def labels(self) -> frozenset[str]:
        return self._labels

    def __iter__(self) -> Iterator[Datafile]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def get_file_by_label(self, label: str) -> Datafile:
        """The one file carrying ``label``; FileNotInFilterSet or MultipleFilesFound otherwise."""
        try:
            return self._files.one(labels__contains=label)
        except (FileNotInFilterSet, MultipleFilesFound) as error:
            raise type(error)(f"dataset {self.name!r}: {error.message}") from None

    @property
    def content_hash(self) -> str:
        """Merkle root over the files' ``(relative path, hash, size)`` and the dataset's tags and
        labels. The name, the location and per-file metadata are not content and do not count.
        """
        entries: list[tuple[str, str, int]] = []
        for datafile in self._files:
            hash_value, size = datafile.hash_value, datafile.size
            if hash_value is None or size is None:
                raise InvalidInput(
                    f"dataset {self.name!r}: cannot hash remote file {datafile.path} without its "
                    "hash_value and size; download the dataset first"
                )
            assert datafile.relative_path is not None
            entries.append((datafile.relative_path, hash_value, size))
        values = {"tags": dict(self._tags), "labels": sorted(self._labels)}
        return hashing.tree_hash(entries, values)

    # -- primitive form --------------------------------------------------------------------

    def to_primitive(self) -> dict[str, Any]:
        """A JSON-able dict; files sorted by relative path so equal datasets serialise equally."""
        files = sorted(self._files, key=lambda datafile: datafile.relative_path or "")
        return {
            "name": self._name,
            "path": self._path,
            "tags": copy.deepcopy(dict(self._tags)),
            "labels": sorted(self._labels),
            "files": [datafile.to_primitive() for datafile in files],
        }

    @classmethod
    def from_primitive(cls, data: Mapping[str, Any], base_dir: str | None = None) -> Dataset:
        """Build from ``to_primitive`` output or Octue's serialised dataset.

        Relative local paths (the dataset's and its files') are taken relative to ``base_dir``
        when given, the directory of the document they were read from. Unknown keys (Octue's
        ``id``, ``sdk_version``, ...) are ignored. Without a ``files`` key a local ``path`` is
        read from disk.
        """
        if not isinstance(data, Mapping):
            raise InvalidInput(f"dataset: expected an object, got {data!r}")
        path = data.get("path")
        if path is not None and not isinstance(path, str):
            raise InvalidInput(f"dataset: 'path' must be a string, got {path!r}")
        if path is not None:
            path = resolve_path(path, base_dir)
        raw_files = data.get("files")
        files: list[Datafile] | None = None
        if raw_files is not None:
            if not isinstance(raw_files, list):
                raise InvalidInput(f"dataset: 'files' must be a list, got {raw_files!r}")
            files = []
            for index, entry in enumerate(raw_files):
                try:
                    files.append(_file_from_primitive(entry, base_dir))
                except AssayError as error:
                    raise type(error)(f"files[{index}]: {error.message}") from None
        return cls(
            files=files,
            name=data.get("name"),
            tags=data.get("tags"),
            labels=data.get("labels"),
            path=path,
        )

    # -- value behaviour -------------------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        return (
            self._name,
            self._path,
            hashing.canonical_json(dict(self._tags)),
            self._labels,
            self._files,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dataset):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Dataset({self.name!r}, {len(self)} files)>"


def _file_from_primitive(entry: Any, base_dir: str | None) -> Datafile:
    if isinstance(entry, str):
        return Datafile(path=resolve_path(entry, base_dir))
    if not isinstance(entry, Mapping):
        raise InvalidInput(f"expected a file object or path, got {entry!r}")
    entry = dict(entry)
    for key in ("path", "local_path", "cloud_path"):
        if isinstance(entry.get(key), str):
            entry[key] = resolve_path(entry[key], base_dir)
    return Datafile.from_primitive(entry)
