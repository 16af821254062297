"""Where a managed pipeline job writes: its archive path under the products root.

An archive path is a *logical* path shaped like SD2E's: ``/products/v2/<pipeline uuid,
compact>/<hash of child_of>/<hash of data>`` (plus ``/<adjective>-<animal>-<UTC timestamp>``
when instanced). ``/products`` names the products root, a local folder:
``$ASSAY_PRODUCTS_ROOT``, default ``$ASSAY_HOME/products``. So ``/products/v2/ab/cd/ef`` lives
at ``<products root>/v2/ab/cd/ef``. Nothing outside the products root is ever a job's archive.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path, PurePosixPath

from assay.core.errors import InvalidArchivePath, UnsafeReset
from assay.core.settings import Settings
from assay.pjobs.identity import compact_uuid, short_hash
from assay.pjobs.words import ADJECTIVES, ANIMALS

LOGICAL_ROOT = "/products"
LAYOUT_VERSION = "v2"


def products_root(settings: Settings) -> Path:
    """The folder ``/products`` stands for: ``$ASSAY_PRODUCTS_ROOT`` or ``$ASSAY_HOME/products``."""
    configured = os.environ.get("ASSAY_PRODUCTS_ROOT")
    root = Path(configured).expanduser() if configured else settings.home / "products"
    return root.absolute()


def generated_archive_path(pipeline_uuid: str, child_of: list[str], data: object) -> str:
    """The deterministic (not instanced) archive path of a job."""
    return "/".join(
        (
            LOGICAL_ROOT,
            LAYOUT_VERSION,
            compact_uuid(pipeline_uuid),
            short_hash(sorted(child_of)),
            short_hash(data),
        )
    )


def instanced_directory(session: str | None = None, now: float | None = None) -> str:
    """``<adjective>-<animal>-<UTC timestamp>``, or ``<session>-<UTC timestamp>`` when a session
    of at least 4 characters is given (as in SD2E)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    if session is not None and len(session) >= 4:
        return f"{session.rstrip('-')}-{stamp}"
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(ANIMALS)}-{stamp}"


def normalize_archive_path(path: str, settings: Settings) -> str:
    """An explicit archive path as its logical form; refuses anything outside the products root.

    Accepted: a logical path ``/products/...`` or an absolute local path under the products
    root. Refused (``InvalidArchivePath``): a relative path, a ``..`` component, the products
    root itself, anything that does not lie under it.
    """
    if not isinstance(path, str) or not path:
        raise InvalidArchivePath("archive_path must be a non-empty string")
    parts = PurePosixPath(path).parts
    if ".." in parts or "." in path.split("/"):
        raise InvalidArchivePath(f"archive_path {path!r} must not contain '..' or '.' parts")
    if not path.startswith("/"):
        raise InvalidArchivePath(
            f"archive_path {path!r} must be absolute: {LOGICAL_ROOT}/... or a folder under "
            f"the products root {products_root(settings)}"
        )
    root = products_root(settings)
    clean = PurePosixPath(path)
    logical = PurePosixPath(LOGICAL_ROOT)
    if clean.is_relative_to(logical):
        relative = clean.relative_to(logical)
    elif clean.is_relative_to(PurePosixPath(root.as_posix())):
        relative = clean.relative_to(PurePosixPath(root.as_posix()))
    else:
        raise InvalidArchivePath(
            f"archive_path {path!r} is outside the products root: use {LOGICAL_ROOT}/... "
            f"(the folder {root})"
        )
    if not relative.parts:
        raise InvalidArchivePath(
            f"archive_path {path!r} is the products root itself; give the job its own folder"
        )
    return f"{LOGICAL_ROOT}/{relative.as_posix()}"


def local_path(archive_path: str, settings: Settings) -> Path:
    """The local folder of a logical archive path (checked again: it must stay under the root)."""
    logical = normalize_archive_path(archive_path, settings)
    relative = PurePosixPath(logical).relative_to(LOGICAL_ROOT)
    return products_root(settings).joinpath(*relative.parts)


def ensure_directory(archive_path: str, settings: Settings) -> Path:
    """Create the job's folder; refuses when it (or a parent) resolves outside the root."""
    folder = local_path(archive_path, settings)
    folder.mkdir(parents=True, exist_ok=True)
    _check_inside(folder, settings)
    return folder


def _check_inside(folder: Path, settings: Settings) -> None:
    root = products_root(settings).resolve()
    real = folder.resolve()
    if real == root or not real.is_relative_to(root):
        raise UnsafeReset(
            f"the archive folder {folder} resolves to {real}, outside the products root {root}"
        )


def check_clearable(archive_path: str, settings: Settings, nested_jobs: list[str]) -> None:
    """Refuse (``UnsafeReset``) a reset whose clearing could delete anything outside the job's
    own archive: the folder (or a parent) resolves outside the products root, the folder is a
    symbolic link, or it holds another job's archive (``nested_jobs``)."""
    if nested_jobs:
        raise UnsafeReset(
            f"resetting {archive_path} would delete the archives of other jobs: "
            + ", ".join(sorted(nested_jobs)[:5])
        )
    folder = local_path(archive_path, settings)
    if folder.is_symlink():
        raise UnsafeReset(f"the archive folder {folder} is a symbolic link; refusing to reset")
    if folder.exists():
        _check_inside(folder, settings)


def clear_directory(archive_path: str, settings: Settings, nested_jobs: list[str]) -> int:
    """Delete everything inside a job's archive folder (the folder stays); returns the count
    of entries removed. Checks ``check_clearable`` first; symbolic links inside are removed as
    links, never followed."""
    check_clearable(archive_path, settings, nested_jobs)
    folder = local_path(archive_path, settings)
    if not folder.exists():
        return 0
    removed = 0
    for entry in list(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            removed += sum(1 for _ in entry.rglob("*"))
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed += 1
    return removed
