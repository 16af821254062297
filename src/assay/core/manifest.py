"""Manifest: named references to datasets, and the one parser for those references.

A reference is a catalog URI (``assay://<context>/<name>[@<uuid>]``; no uuid means the latest
bundle), a local path, an object-store URL (``s3://``, ``gs://``, ``az://``, ``file://``,
``memory://``, ...) or a Dataset object. ``parse_reference`` turns each into a ``Reference``
record so every layer reads references the same way.

Octue's Manifest changed the datasets the caller passed in; this one copies its input and is
immutable (Datasets are immutable too), so a manifest handed to a service cannot change the
caller's. Its JSON form is Octue's: ``{"id": ..., "datasets": {key: "reference" | {dataset}}}``;
relative local paths in a manifest file are relative to the file's directory.
"""

from __future__ import annotations

import json
import os
import re
import uuid as uuid_module
from collections.abc import Callable, Iterator, KeysView, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from assay.core.datafile import file_url_path, url_protocol
from assay.core.dataset import Dataset, resolve_path
from assay.core.errors import (
    AssayError,
    DatasetNotInManifest,
    InvalidInput,
    InvalidManifest,
    InvalidName,
    LocalFilesNotAllowed,
    NoDownloader,
    PathNotFound,
)
from assay.core.names import check_bundle_name, check_context_name

#: Dataset keys: letters, digits, ``_`` and ``-`` (twine strands use both), starting with a
#: letter or digit.
#: ``downloader(manifest, paths=..., allow_local_files=..., keys=...) -> {key: directory}``
Downloader = Callable[..., dict[str, str]]
_downloader: Downloader | None = None


def register_downloader(downloader: Downloader) -> None:
    """Set what ``Manifest.download`` calls. The model does no I/O, so the transfer code lives
    in a higher layer, which registers it here (``assay.bundles.manifest_download``); the last
    registration wins."""
    global _downloader
    _downloader = downloader


KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
CATALOG_PROTOCOL = "assay"
#: Object-store protocols a URL reference may use (all read through fsspec).
URL_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "file", "memory", "http", "https"}
)

ReferenceKind = Literal["catalog", "local", "url", "dataset"]


@dataclass(frozen=True)
class Reference:
    """A parsed dataset reference. Which fields are set depends on ``kind``:
    catalog: ``context``, ``name``, ``uuid`` (None = latest); local: ``path``;
    url: ``url``, ``protocol``; dataset: ``dataset``.
    """

    kind: ReferenceKind
    context: str | None = None
    name: str | None = None
    uuid: str | None = None
    path: str | None = None
    url: str | None = None
    protocol: str | None = None
    dataset: Dataset | None = field(default=None, hash=False)

    @property
    def uri(self) -> str | None:
        """The reference as a string (catalog URI, path or URL); None for a Dataset object."""
        if self.kind == "catalog":
            suffix = f"@{self.uuid}" if self.uuid else ""
            return f"{CATALOG_PROTOCOL}://{self.context}/{self.name}{suffix}"
        if self.kind == "local":
            return self.path
        return self.url

    @property
    def uses_local_files(self) -> bool:
        """True when using this dataset means reading this machine's disk: a plain local path, or
        a Dataset with a file at a plain local path. ``file://`` URLs are object-store URLs
        (read through fsspec) and do not count."""
        if self.kind == "local":
            return True
        if self.kind == "dataset" and self.dataset is not None:
            if not len(self.dataset):
                return self.dataset.path is not None and url_protocol(self.dataset.path) is None
            return any(not datafile.is_url for datafile in self.dataset.files)
        return False

    def to_primitive(self) -> str | dict[str, Any]:
        if self.dataset is not None:
            return self.dataset.to_primitive()
        uri = self.uri
        assert uri is not None
        return uri


def parse_reference(ref: Any) -> Reference:
    """Classify and validate one dataset reference; InvalidManifest if it is none of the kinds."""
    if isinstance(ref, Reference):
        return ref
    if isinstance(ref, Dataset):
        return Reference(kind="dataset", dataset=ref)
    if isinstance(ref, os.PathLike):
        ref = os.fspath(ref)
    if not isinstance(ref, str):
        raise InvalidManifest(f"expected a string reference or a dataset object, got {ref!r}")
    if not ref.strip():
        raise InvalidManifest("empty dataset reference")
    protocol = url_protocol(ref)
    if protocol is None:
        if "://" in ref:
            raise InvalidManifest(f"invalid dataset reference {ref!r}: malformed URL")
        return Reference(kind="local", path=ref)
    if protocol == CATALOG_PROTOCOL:
        return _parse_catalog_uri(ref)
    if protocol not in URL_PROTOCOLS:
        raise InvalidManifest(
            f"unsupported protocol {protocol!r} in {ref!r}: use assay://<context>/<name>, a "
            f"local path, or a URL with one of {', '.join(sorted(URL_PROTOCOLS))}"
        )
    if not ref.split("://", 1)[1].strip("/"):
        raise InvalidManifest(f"invalid dataset reference {ref!r}: the URL names no location")
    return Reference(kind="url", url=ref, protocol=protocol)


def _parse_catalog_uri(ref: str) -> Reference:
    rest = ref.split("://", 1)[1]
    context, slash, name_part = rest.partition("/")
    name, at, uuid_text = name_part.partition("@")
    problem = ""
    if not slash or not context or not name:
        problem = "write it as assay://<context>/<name> or assay://<context>/<name>@<uuid>"
    elif at and not uuid_text:
        problem = "nothing after '@'; give a bundle uuid or drop the '@'"
    if problem:
        raise InvalidManifest(f"invalid catalog reference {ref!r}: {problem}")
    try:
        check_context_name(context)
        check_bundle_name(name)
    except InvalidName as error:
        raise InvalidManifest(f"invalid catalog reference {ref!r}: {error.message}") from None
    bundle_uuid = None
    if uuid_text:
        try:
            bundle_uuid = str(uuid_module.UUID(uuid_text))
        except ValueError:
            raise InvalidManifest(
                f"invalid catalog reference {ref!r}: {uuid_text!r} is not a uuid"
            ) from None
    return Reference(kind="catalog", context=context, name=name, uuid=bundle_uuid)


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise InvalidManifest(
            f"manifest: invalid dataset key {key!r}: use letters, digits, '_' and '-', starting "
            "with a letter or digit"
        )
    return key


def _in_manifest(key: str, error: AssayError) -> AssayError:
    """Re-raise a problem found inside one dataset entry, saying which entry."""
    message = f"manifest: datasets.{key}: {error.message}"
    if isinstance(error, PathNotFound | LocalFilesNotAllowed):
        return type(error)(message)
    return InvalidManifest(message)


def local_files_refused(key: str, reference: Reference) -> LocalFilesNotAllowed:
    """The error for using a dataset on this machine's disk without ``allow_local_files``."""
    if reference.kind == "local":
        where = f"is a local path ({reference.path})"
    else:
        dataset = reference.dataset
        assert dataset is not None
        local = sorted(datafile.path for datafile in dataset.files if not datafile.is_url)
        where = f"has local files ({local[0]}, ...)" if local else f"is local ({dataset.path})"
    return LocalFilesNotAllowed(
        f"dataset {key!r} {where}; pass allow_local_files=True to use local datasets"
    )


class _DatasetsView(Mapping[str, Dataset]):
    """``manifest.datasets``: key -> Dataset, built on access (Octue's ``manifest.datasets``)."""

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest

    def __getitem__(self, key: str) -> Dataset:
        return self._manifest.get_dataset(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._manifest.keys())

    def __len__(self) -> int:
        return len(self._manifest)


class Manifest:
    """Named dataset references; immutable, JSON round-trips, ``download()`` materialises."""

    __slots__ = ("_downloaded", "_id", "_references")

    def __init__(self, datasets: Mapping[str, Any] | None = None, id: str | None = None) -> None:
        self._references = self._build(datasets, base_dir=None, allow_local_files=True)
        if id is None:
            id = str(uuid_module.uuid4())
        if not isinstance(id, str) or not id.strip():
            raise InvalidManifest(f"manifest: id must be a non-empty string, got {id!r}")
        self._id = id
        self._downloaded: dict[str, str] = {}

    @staticmethod
    def _build(
        datasets: Any, base_dir: str | None, allow_local_files: bool
    ) -> dict[str, Reference]:
        if datasets is None:
            return {}
        if not isinstance(datasets, Mapping):
            raise InvalidManifest(
                "manifest: datasets: expected an object of key to dataset reference, got "
                f"{type(datasets).__name__}"
            )
        references: dict[str, Reference] = {}
        for key, value in datasets.items():
            _check_key(key)
            try:
                reference = _reference(value, base_dir, allow_local_files)
            except AssayError as error:
                raise _in_manifest(key, error) from None
            if reference.uses_local_files and not allow_local_files:
                refused = local_files_refused(key, reference)
                raise LocalFilesNotAllowed(f"manifest: {refused.message}")
            references[key] = reference
        return references

    # -- mapping behaviour -----------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def references(self) -> Mapping[str, Reference]:
        return MappingProxyType(self._references)

    @property
    def datasets(self) -> Mapping[str, Dataset]:
        return _DatasetsView(self)

    def keys(self) -> KeysView[str]:
        return self._references.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self._references)

    def __len__(self) -> int:
        return len(self._references)

    def __contains__(self, key: object) -> bool:
        return key in self._references

    def get_reference(self, key: str) -> Reference:
        try:
            return self._references[key]
        except KeyError:
            known = ", ".join(repr(k) for k in self._references) or "none"
            raise DatasetNotInManifest(
                f"no dataset {key!r} in the manifest (keys: {known})"
            ) from None

    def get_dataset(self, key: str) -> Dataset:
        """The dataset under ``key``, always as a Dataset.

        A local directory (or ``file://`` URL) is read where it is; a remote or catalog
        reference is downloaded to a temporary directory on first access (once per manifest),
        as Octue's ``manifest.datasets[key].files`` reached cloud files.
        """
        reference = self.get_reference(key)
        if reference.dataset is not None:
            return reference.dataset
        if reference.kind == "local":
            assert reference.path is not None
            return Dataset(path=reference.path)
        if reference.kind == "url" and reference.protocol == "file":
            assert reference.url is not None
            return Dataset(path=file_url_path(reference.url))
        if key not in self._downloaded:
            self._downloaded[key] = self.download(paths=None, keys=[key])[key]
        return Dataset(path=self._downloaded[key], name=_reference_name(reference))

    def __getitem__(self, key: str) -> Dataset:
        return self.get_dataset(key)

    def download(
        self,
        paths: Mapping[str, str | os.PathLike[str]] | None = None,
        allow_local_files: bool = False,
        keys: list[str] | None = None,
    ) -> dict[str, str]:
        """Materialise datasets as local directories; returns ``{key: local directory}``.

        See ``assay.bundles.manifest_download.download_manifest`` for the rules. The transfer
        code lives above the core and is registered with ``register_downloader`` (importing
        ``assay.resources`` or ``assay.services`` does it), so the core does no I/O;
        NoDownloader when nothing registered one.
        """
        if _downloader is None:
            raise NoDownloader(
                "Manifest.download has no downloader: import assay.resources (or call "
                "assay.bundles.manifest_download.install_downloader()) first"
            )
        return _downloader(self, paths=paths, allow_local_files=allow_local_files, keys=keys)

    # -- serialisation ---------------------------------------------------------------------

    def serialise(self) -> dict[str, Any]:
        """Octue's primitive form: ``{"id", "datasets": {key: reference string | dataset}}``."""
        return {
            "id": self._id,
            "datasets": {key: ref.to_primitive() for key, ref in self._references.items()},
        }

    @classmethod
    def deserialise(
        cls,
        data: Any,
        base_dir: str | os.PathLike[str] | None = None,
        allow_local_files: bool = True,
    ) -> Manifest:
        """Build from ``serialise()`` output or Octue's form (including the older
        ``"datasets": [...]`` list with a ``"keys": {key: index}`` map).

        Relative local paths are resolved against ``base_dir``. With
        ``allow_local_files=False`` a local reference raises LocalFilesNotAllowed here, before
        anything reads it.
        """
        if not isinstance(data, Mapping):
            raise InvalidManifest(f"manifest: expected a JSON object, got {type(data).__name__}")
        if "datasets" not in data:
            raise InvalidManifest("manifest: missing 'datasets' (an object of key to reference)")
        datasets = _octue_list_form(data["datasets"], data.get("keys"))
        base = None if base_dir is None else os.fspath(base_dir)
        manifest = cls.__new__(cls)
        manifest._references = cls._build(datasets, base, allow_local_files)
        manifest_id = data.get("id")
        if manifest_id is None:
            manifest_id = str(uuid_module.uuid4())
        if not isinstance(manifest_id, str) or not manifest_id.strip():
            raise InvalidManifest(f"manifest: id must be a non-empty string, got {manifest_id!r}")
        manifest._id = manifest_id
        manifest._downloaded = {}
        return manifest

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.serialise(), indent=indent)

    @classmethod
    def from_json(
        cls, text_or_path: str | os.PathLike[str], allow_local_files: bool = True
    ) -> Manifest:
        """Read a manifest from JSON text or from a file (whose directory anchors relative
        paths). A string starting with ``{`` or ``[`` is JSON text; any other is a path."""
        base_dir: str | None = None
        if isinstance(text_or_path, str) and text_or_path.lstrip()[:1] in ("{", "["):
            text = text_or_path
        elif isinstance(text_or_path, str | os.PathLike):
            path = os.fspath(text_or_path)
            if not os.path.isfile(path):
                raise PathNotFound(
                    f"manifest: no manifest file at {path}"
                    if isinstance(text_or_path, os.PathLike)
                    else f"manifest: {path!r} is neither JSON text nor an existing file"
                )
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except (OSError, UnicodeDecodeError) as error:
                raise InvalidManifest(f"manifest: cannot read {path}: {error}") from None
            base_dir = os.path.dirname(os.path.abspath(path))
        else:
            raise InvalidManifest(
                f"manifest: expected JSON text or a file path, got {type(text_or_path).__name__}"
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidManifest(f"manifest: not valid JSON: {error}") from None
        return cls.deserialise(data, base_dir=base_dir, allow_local_files=allow_local_files)

    # -- value behaviour -------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        return self._id == other._id and self._references == other._references

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Manifest({self._id!r}, datasets={list(self._references)!r})>"


def _reference(value: Any, base_dir: str | None, allow_local_files: bool) -> Reference:
    if isinstance(value, Mapping):
        if not allow_local_files and _dict_reads_local_directory(value):
            raise LocalFilesNotAllowed(
                f"the dataset is a local directory ({value['path']}); pass allow_local_files=True "
                "to use local datasets"
            )
        try:
            return Reference(kind="dataset", dataset=Dataset.from_primitive(value, base_dir))
        except PathNotFound:
            raise
        except InvalidInput as error:
            raise InvalidManifest(error.message) from None
    reference = parse_reference(value)
    if reference.kind == "local" and base_dir is not None:
        assert reference.path is not None
        return Reference(kind="local", path=resolve_path(reference.path, base_dir))
    return reference


def _dict_reads_local_directory(value: Mapping[str, Any]) -> bool:
    path = value.get("path")
    return "files" not in value and isinstance(path, str) and url_protocol(path) is None


def _octue_list_form(datasets: Any, keys: Any) -> Any:
    """Octue's older manifests list datasets and map keys to list indexes."""
    if not isinstance(datasets, list):
        return datasets
    if not isinstance(keys, Mapping):
        raise InvalidManifest(
            "manifest: datasets: a list of datasets needs a 'keys' object of key to index"
        )
    result: dict[str, Any] = {}
    for key, index in keys.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(datasets):
            raise InvalidManifest(f"manifest: keys.{key}: {index!r} is not an index of datasets")
        result[key] = datasets[index]
    return result


def _reference_name(reference: Reference) -> str | None:
    if reference.kind == "catalog":
        return reference.name
    uri = reference.uri or ""
    return uri.rstrip("/").rsplit("/", 1)[-1] or None
