"""Making a bundle from bytes received over the network (a file, a tar of files, JSON).

The face spools the request body to a file under ``ASSAY_HOME/uploads`` and calls one of
these only when the whole body arrived (its length matched), so an upload cut off mid-way
makes no bundle. The bundle itself is then written as every bundle is: blobs first, then its
catalog rows in one transaction. A tar is unpacked member by member into a private folder;
absolute names, ``..``, links and device files are refused before anything is stored.
"""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from assay.bundles import operations
from assay.bundles.file_access import check_bundle_path
from assay.bundles.ingest import walk_directory
from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidInput
from assay.core.records import BundleRecord

MAX_TAR_MEMBERS = 100_000


@contextlib.contextmanager
def upload_folder(workspace: Workspace) -> Iterator[Path]:
    """A private folder for one upload, removed afterwards whatever happens."""
    root = workspace.settings.home / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bundle_from_file(
    workspace: Workspace,
    context: str,
    name: str,
    spooled: Path,
    filename: str,
    *,
    tags: Mapping[str, Any] | None = None,
    owner: str,
) -> BundleRecord:
    """A bundle holding one file, named ``filename``, whose bytes are in ``spooled``."""
    if "/" in filename:
        raise InvalidInput(f"invalid file name {filename!r}: no '/'", {"field": "filename"})
    check_bundle_path(filename)
    target = spooled.parent / "file" / filename
    target.parent.mkdir()
    spooled.rename(target)
    return operations.create_bundle(
        workspace, context, name, target, tags=tags, owner=owner, processing_name="upload"
    )


def bundle_from_tar(
    workspace: Workspace,
    context: str,
    name: str,
    spooled: Path,
    *,
    tags: Mapping[str, Any] | None = None,
    owner: str,
) -> BundleRecord:
    """A bundle holding the files of the tar archive in ``spooled`` (its file list)."""
    root = spooled.parent / "tree"
    root.mkdir()
    _unpack(spooled, root)
    files = list(walk_directory(str(root)))
    if not files:
        raise InvalidInput("the tar archive holds no files", {"field": "body"})
    return operations.create_bundle(
        workspace,
        context,
        name,
        None,
        files=files,
        tags=tags,
        owner=owner,
        processing_name="upload",
    )


def bundle_from_json(
    workspace: Workspace,
    context: str,
    name: str,
    data: Any,
    *,
    tags: Mapping[str, Any] | None = None,
    owner: str,
) -> BundleRecord:
    """A bundle whose data is a JSON value."""
    return operations.create_bundle(
        workspace, context, name, data, tags=tags, owner=owner, processing_name="upload"
    )


def _unpack(archive: Path, root: Path) -> None:
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            if len(members) > MAX_TAR_MEMBERS:
                raise InvalidInput(
                    f"the tar archive has more than {MAX_TAR_MEMBERS} entries", {"field": "body"}
                )
            for member in members:  # check everything before writing anything
                _check_member(member)
            for member in members:
                if member.isdir():
                    continue
                target = root / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - regular files always have a stream
                    raise InvalidInput(f"cannot read {member.name!r} in the tar archive")
                with source, open(target, "xb") as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidInput(
            f"the body is not a readable tar archive: {exc}", {"field": "body"}
        ) from None
    except FileExistsError as exc:
        raise InvalidInput(
            f"the tar archive names a file twice: {exc.filename}", {"field": "body"}
        ) from None


def _check_member(member: tarfile.TarInfo) -> None:
    name = (
        member.name.removeprefix("./").rstrip("/")
        if member.isdir()
        else member.name.removeprefix("./")
    )
    if member.isdir() and name in ("", "."):
        return
    if not (member.isfile() or member.isdir()):
        raise InvalidInput(
            f"the tar archive holds {member.name!r}, which is not a regular file or folder "
            "(links and devices are refused)",
            {"field": "body"},
        )
    try:
        check_bundle_path(name)
    except InvalidInput:
        raise InvalidInput(
            f"the tar archive holds an unsafe path {member.name!r} (absolute or with '..')",
            {"field": "body"},
        ) from None
    member.name = name
