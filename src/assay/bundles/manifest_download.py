"""Materialise a manifest's datasets as local directories (``Manifest.download``).

Rules, per dataset key:

- The destination is ``paths[key]`` when given, else a fresh ``assay-manifest-*`` temp dir
  (catalog URIs excepted, see below).
- A local path (or a Dataset with files at plain local paths) is refused with
  LocalFilesNotAllowed unless ``allow_local_files=True``; then the path itself is returned when
  no destination was given, else its files are copied there.
- A URL (``file://``, ``memory://``, ``s3://``, ...) is read through fsspec; nothing at the URL
  raises PathNotFound.
- A catalog URI (``assay://...``) is materialised by ``assay.bundles.materialize``: into
  ``paths[key]`` when given, else the bundle's own verified read-only view
  (``$ASSAY_HOME/views/<uuid>``), shared by every call, so repeated downloads make no new
  folder (a bundle never changes, so its view is a cache by content).

The core's ``Manifest.download`` does no I/O itself: it calls the downloader a higher layer
registered. ``install_downloader()`` registers this module's ``download_manifest``; the faces
and services that hand out manifests call it when they are imported (``assay.resources``,
``assay.services.child``, ``assay.services.runner``). fsspec is imported on first use, so
registering costs a worker nothing.

Every refusal and bad argument is raised before any byte moves. Files for a given destination
are gathered in a hidden staging directory beside it and moved in only when complete, so a
failed download leaves no half-filled destination; temp dirs made for a failed call are
removed, because the caller never learns their names.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from assay.core.dataset import Dataset
from assay.core.errors import (
    AssayError,
    InvalidInput,
    MissingExtra,
    PathNotFound,
    StorageError,
)
from assay.core.manifest import Manifest, Reference, local_files_refused, register_downloader

TEMP_PREFIX = "assay-manifest-"
_STAGING_PREFIX = ".assay-download-"


def download_manifest(
    manifest: Manifest,
    paths: Mapping[str, str | os.PathLike[str]] | None = None,
    allow_local_files: bool = False,
    keys: Iterable[str] | None = None,
) -> dict[str, str]:
    """Materialise the datasets named by ``keys`` (default: all) and return
    ``{key: absolute local directory}`` in manifest order."""
    if keys is None:
        selected = list(manifest.keys())
    else:
        wanted = set(keys)
        for key in wanted:
            manifest.get_reference(key)  # DatasetNotInManifest for an unknown key
        selected = [key for key in manifest if key in wanted]
    destinations = _check_paths(manifest, paths)
    references = {key: manifest.get_reference(key) for key in selected}
    for key, reference in references.items():
        if reference.uses_local_files and not allow_local_files:
            raise local_files_refused(key, reference)
    made: list[str] = []
    results: dict[str, str] = {}
    try:
        for key, reference in references.items():
            results[key] = _materialise(key, reference, destinations.get(key), made)
    except BaseException:
        for directory in made:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return results


def _check_paths(
    manifest: Manifest, paths: Mapping[str, str | os.PathLike[str]] | None
) -> dict[str, str]:
    if paths is None:
        return {}
    if not isinstance(paths, Mapping):
        raise InvalidInput(
            f"paths must map dataset keys to directories, not {type(paths).__name__}"
        )
    checked: dict[str, str] = {}
    for key, destination in paths.items():
        if key not in manifest:
            raise InvalidInput(
                f"paths names {key!r}, which is not a dataset in the manifest "
                f"(keys: {', '.join(repr(k) for k in manifest) or 'none'})"
            )
        if not isinstance(destination, str | os.PathLike) or not os.fspath(destination):
            raise InvalidInput(f"paths[{key!r}]: expected a directory path, got {destination!r}")
        directory = os.path.abspath(os.fspath(destination))
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise InvalidInput(f"paths[{key!r}]: {directory} exists and is not a directory")
        checked[key] = directory
    return checked


def _materialise(key: str, reference: Reference, destination: str | None, made: list[str]) -> str:
    if reference.kind == "catalog":
        return _from_catalog(reference, destination, made)
    if reference.kind == "local":
        assert reference.path is not None
        source = os.path.abspath(reference.path)
        if not os.path.exists(source):
            raise PathNotFound(f"dataset {key!r}: no local dataset at {source}")
        if destination is None:
            return source
        return _fill(destination, made, lambda staging: _copy_local(source, staging))
    if reference.kind == "url":
        assert reference.url is not None
        url = reference.url
        return _fill(destination, made, lambda staging: _get_url(key, url, staging))
    dataset = reference.dataset
    assert dataset is not None
    if destination is None and _lives_under_its_path(dataset):
        assert dataset.path is not None
        return os.path.abspath(dataset.path)
    return _fill(destination, made, lambda staging: _get_dataset_files(key, dataset, staging))


def _fill(destination: str | None, made: list[str], fetch: Any) -> str:
    """Run ``fetch(directory)`` so that ``destination`` only ever sees complete results."""
    if destination is None:
        directory = tempfile.mkdtemp(prefix=TEMP_PREFIX)
        made.append(directory)
        fetch(directory)
        return directory
    parent = os.path.dirname(destination)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=parent)
    try:
        fetch(staging)
        if not os.path.exists(destination):
            os.replace(staging, destination)
        else:
            _move_into(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def _move_into(source: str, destination: str) -> None:
    for directory, _, filenames in os.walk(source):
        target_directory = os.path.join(destination, os.path.relpath(directory, source))
        os.makedirs(target_directory, exist_ok=True)
        for filename in filenames:
            os.replace(os.path.join(directory, filename), os.path.join(target_directory, filename))


def _copy_local(source: str, staging: str) -> None:
    if os.path.isdir(source):
        shutil.copytree(source, staging, dirs_exist_ok=True)
    else:
        shutil.copy2(source, os.path.join(staging, os.path.basename(source)))


def _target(staging: str, relative_path: str, where: str) -> str:
    parts = relative_path.split("/")
    if not relative_path or any(part in ("", ".", "..") for part in parts):
        raise InvalidInput(f"{where}: refusing unsafe file path {relative_path!r}")
    target = os.path.join(staging, *parts)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    return target


def _open_url(url: str) -> tuple[Any, str]:
    import fsspec  # here: 60 ms of imports that a question without URLs never needs

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as error:
        raise MissingExtra(f"reading {url} needs an extra package: {error}") from None
    except ValueError as error:
        raise InvalidInput(f"cannot read {url}: {error}") from None


def _get_url(key: str, url: str, staging: str) -> None:
    if _through_remote_machinery(url):
        from assay.bundles.url_fetch import fetch_url

        fetch_url(url, staging, f"dataset {key!r}")
        return
    fs, root = _open_url(url)
    try:
        if not fs.exists(root):
            raise PathNotFound(f"dataset {key!r}: nothing found at {url}")
        if fs.isfile(root):
            pairs = [(root, posixpath.basename(root.rstrip("/")))]
        else:
            prefix = root.rstrip("/") + "/"
            pairs = [
                (remote, remote[len(prefix) :] if remote.startswith(prefix) else remote)
                for remote in fs.find(root)
            ]
        for remote, relative in pairs:
            fs.get_file(remote, _target(staging, relative, f"dataset {key!r}"))
    except FileNotFoundError as error:
        raise PathNotFound(f"dataset {key!r}: {url}: {error}") from None
    except AssayError:
        raise
    except OSError as error:
        raise StorageError(f"dataset {key!r}: reading {url} failed: {error}") from None


def _through_remote_machinery(url: str) -> bool:
    """``s3://`` and ``file://`` URLs go through Assay's remote machinery (timeouts, retries,
    clear errors, a download cache by content hash); other protocols straight through fsspec."""
    return url.partition("://")[0].lower() in ("s3", "s3a", "file")


def _lives_under_its_path(dataset: Dataset) -> bool:
    """True when every file is a plain local file inside the dataset's local directory."""
    if dataset.path is None or any(datafile.is_url for datafile in dataset.files):
        return False
    root = os.path.abspath(dataset.path)
    return os.path.isdir(root) and all(
        datafile.local_path is not None
        and os.path.join(root, *(datafile.relative_path or "").split("/")) == datafile.local_path
        for datafile in dataset.files
    )


def _get_dataset_files(key: str, dataset: Dataset, staging: str) -> None:
    for datafile in dataset.files:
        assert datafile.relative_path is not None
        target = _target(staging, datafile.relative_path, f"dataset {key!r}")
        if datafile.local_path is not None:
            if not os.path.isfile(datafile.local_path):
                raise PathNotFound(f"dataset {key!r}: no file at {datafile.local_path}")
            shutil.copy2(datafile.local_path, target)
            continue
        if _through_remote_machinery(datafile.path):
            from assay.bundles.url_fetch import fetch_url

            scratch = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=staging)
            try:
                fetch_url(datafile.path, scratch, f"dataset {key!r}")
                (only,) = [os.path.join(d, f) for d, _, fs_ in os.walk(scratch) for f in fs_]
                os.replace(only, target)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            continue
        fs, remote = _open_url(datafile.path)
        try:
            fs.get_file(remote, target)
        except FileNotFoundError:
            raise PathNotFound(f"dataset {key!r}: nothing found at {datafile.path}") from None
        except OSError as error:
            raise StorageError(
                f"dataset {key!r}: reading {datafile.path} failed: {error}"
            ) from None


def _from_catalog(reference: Reference, destination: str | None, made: list[str]) -> str:
    from assay.bundles.materialize import materialize_uri, view_of_uri

    assert reference.uri is not None
    if destination is None:
        # The bundle's shared, verified view: no new folder per call (nothing to clean up).
        return str(view_of_uri(reference.uri))
    return str(materialize_uri(reference.uri, Path(destination)))


def install_downloader() -> None:
    """Make ``download_manifest`` the downloader behind ``Manifest.download`` (idempotent)."""
    register_downloader(download_manifest)
