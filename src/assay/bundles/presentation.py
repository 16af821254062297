"""How a bundle's data is saved and given back as what was saved.

Data is encoded to a JSON document. Scalars, lists and string-keyed dicts are themselves;
everything else is a marker object ``{"$assay": {"kind": ...}}``: ``tuple``, ``file``,
``directory``, ``dataframe`` (a Parquet file in the bundle), and ``dict`` for a user dict that
happens to contain the key ``"$assay"``, so no user value can be mistaken for a marker.

Files are named by ``pathlib.Path`` objects or by targets from ``Bundle.make_file`` /
``copy_in_file``; a plain string always stays a string.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from assay.core.errors import InvalidInput, MissingExtra, PathNotFound

MARKER = "$assay"


class FileTarget(os.PathLike[str]):
    """A file that will be part of a bundle: write it, then pass it to ``add_data``."""

    def __init__(self, path: Path, bundle_path: str) -> None:
        self.path = str(path)
        self.bundle_path = bundle_path

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"FileTarget({self.bundle_path!r})"

    def open(self, mode: str = "r", **kwargs: Any) -> IO[Any]:
        if any(flag in mode for flag in "wax+"):
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return open(self.path, mode, **kwargs)

    def exists(self) -> bool:
        return os.path.exists(self.path)


@dataclass
class EncodedData:
    document: Any
    presentation: str
    # bundle path -> file or directory on disk to ingest under that path
    sources: dict[str, Path] = field(default_factory=dict)


def safe_bundle_path(text: str) -> str:
    """A normalised relative POSIX path; refuses absolute paths and ``..``."""
    path = PurePosixPath(text.replace(os.sep, "/"))
    if path.is_absolute() or not path.parts or any(p in ("..", "") for p in path.parts):
        raise InvalidInput(
            f"invalid file name in bundle {text!r}: use a relative path without '..'"
        )
    return str(path)


class _Encoder:
    def __init__(self, staging: Path | None, scratch: Callable[[], Path]) -> None:
        self.staging = staging.resolve() if staging else None
        self.scratch = scratch
        self.sources: dict[str, Path] = {}
        self._frames = 0

    def _claim(self, bundle_path: str, source: Path) -> str:
        bundle_path = safe_bundle_path(bundle_path)
        previous = self.sources.get(bundle_path)
        if previous is not None and previous != source:
            raise InvalidInput(
                f"two different files would be stored as {bundle_path!r} ({previous} and "
                f"{source}); give them different names"
            )
        self.sources[bundle_path] = source
        return bundle_path

    def _in_staging(self, text: str) -> bool:
        return (
            self.staging is not None
            and os.path.isabs(text)
            and Path(text).resolve().is_relative_to(self.staging)
            and os.path.exists(text)
        )

    def path_ref(self, value: os.PathLike[str]) -> dict[str, Any]:
        if isinstance(value, FileTarget):
            source = Path(value.path)
            if not source.exists():
                raise InvalidInput(
                    f"file {value.bundle_path!r} was made with make_file but never written"
                )
            kind = "directory" if source.is_dir() else "file"
            return {MARKER: {"kind": kind, "path": self._claim(value.bundle_path, source)}}
        source = Path(os.fspath(value)).absolute()
        if not source.exists() and not source.is_symlink():
            raise PathNotFound(f"path does not exist: {source}")
        if self.staging is not None and source.resolve().is_relative_to(self.staging):
            bundle_path = str(source.resolve().relative_to(self.staging))
        else:
            bundle_path = source.name
        kind = "directory" if source.is_dir() else "file"
        return {MARKER: {"kind": kind, "path": self._claim(bundle_path, source)}}

    def frame(self, value: Any) -> dict[str, Any]:
        self._frames += 1
        name = "frame.parquet" if self._frames == 1 else f"frame_{self._frames}.parquet"
        target = self.scratch() / name
        try:
            value.to_parquet(target)
        except ImportError as exc:
            raise MissingExtra(
                f"saving a DataFrame needs pyarrow: install assay[dataframe] ({exc})"
            ) from None
        return {MARKER: {"kind": "dataframe", "path": self._claim(name, target)}}

    def encode(self, value: Any) -> Any:
        if isinstance(value, str) and self._in_staging(value):
            # Disdat hands out make_directory() paths as strings: one that points inside this
            # bundle's own staging folder can only mean that file or directory.
            return self.path_ref(Path(value))
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                return {MARKER: {"kind": "float", "value": repr(value)}}
            return value
        if isinstance(value, os.PathLike):
            return self.path_ref(value)
        if isinstance(value, dict):
            items = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidInput(
                        f"bundle data dict keys must be strings, got {type(key).__name__} {key!r}"
                    )
                items[key] = self.encode(item)
            if MARKER in items:
                return {MARKER: {"kind": "dict", "items": items}}
            return items
        if isinstance(value, list):
            return [self.encode(item) for item in value]
        if isinstance(value, tuple):
            return {MARKER: {"kind": "tuple", "items": [self.encode(item) for item in value]}}
        if _is_dataframe(value):
            return self.frame(value)
        if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
            return self.encode(value.item())  # a NumPy scalar: store the Python value
        raise InvalidInput(
            f"cannot store a value of type {type(value).__name__} in a bundle: use a scalar, "
            "dict, list, tuple, pandas DataFrame, pathlib.Path or a target from make_file"
        )


def _is_dataframe(value: Any) -> bool:
    cls = type(value)
    return cls.__name__ == "DataFrame" and cls.__module__.startswith("pandas")


def _is_file_ref(item: Any) -> bool:
    return isinstance(item, dict) and MARKER in item and item[MARKER]["kind"] == "file"


def presentation_of(document: Any) -> str:
    if document is None:
        return "none"
    if isinstance(document, list):
        return "files" if document and all(_is_file_ref(i) for i in document) else "list"
    if isinstance(document, dict):
        marker = document.get(MARKER)
        if marker is None or marker["kind"] == "dict":
            return "dict"
        return {"float": "scalar"}.get(marker["kind"], marker["kind"])
    return "scalar"


def file_list(bundle_paths: Iterable[str]) -> list[dict[str, Any]]:
    """The document of a bundle that presents as a list of its files (e.g. an added folder)."""
    return [{MARKER: {"kind": "file", "path": path}} for path in bundle_paths]


def encode(data: Any, staging: Path | None, scratch: Callable[[], Path]) -> EncodedData:
    """Encode ``data``; ``scratch()`` gives a folder for files Assay writes (DataFrames)."""
    encoder = _Encoder(staging, scratch)
    document = encoder.encode(data)
    return EncodedData(document, presentation_of(document), encoder.sources)


def decode(document: Any, view: Callable[[], Path]) -> Any:
    """Rebuild the saved value; ``view()`` gives the folder holding the bundle's files."""
    if isinstance(document, list):
        return [decode(item, view) for item in document]
    if not isinstance(document, dict):
        return document
    marker = document.get(MARKER)
    if marker is None:
        return {key: decode(item, view) for key, item in document.items()}
    kind = marker["kind"]
    if kind == "dict":
        return {key: decode(item, view) for key, item in marker["items"].items()}
    if kind == "tuple":
        return tuple(decode(item, view) for item in marker["items"])
    if kind == "float":
        return float(marker["value"])
    if kind == "file":
        return str(view() / marker["path"])
    if kind == "directory":
        # A view holds files only; an empty (or not yet made) directory is made here so the
        # path handed back always exists.
        directory = view() / marker["path"]
        directory.mkdir(parents=True, exist_ok=True)
        return str(directory)
    if kind == "dataframe":
        try:
            import pandas
        except ImportError:
            raise MissingExtra("this bundle holds a DataFrame: install assay[dataframe]") from None
        return pandas.read_parquet(view() / marker["path"])
    raise InvalidInput(f"unknown data marker {kind!r} in bundle (made by a newer Assay?)")
