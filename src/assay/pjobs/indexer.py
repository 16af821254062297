"""Indexing a job's archive folder into bundles.

Every regular file under the archive folder (symbolic links are never followed: they could
point outside the products root) is matched against each request's patterns (``re.search`` on
the path relative to the folder, ``/``-separated). Each request with matches becomes one bundle
in the index context (default ``pipelinejobs``), named ``pjob-<job uuid>-<kind>-<n>`` so a
re-index of unchanged files finds the existing version instead of adding one:

- archive requests: links ``generated_by`` the job and ``child_of`` each upstream id;
  tags ``pipelinejob``, ``pipeline``, ``index_kind=archive``, ``level``;
- product requests: also ``derived_from`` each resolved upstream bundle and ``acted_using``
  (arg ``derived_using``) each reference bundle.

Fixity: every bundle file has its BLAKE3 hash and size (the blob store's own); ``sha256`` in a
request's fixity adds SHA-256 digests per file in the bundle's params. Errors raise; the caller
(a job of kind ``pipelinejob_index``) records them.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat as stat_module
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.bundles import operations
from assay.bundles.ingest import SourceFile
from assay.bundles.workspace import Workspace
from assay.core.errors import BundleNotFound, InvalidIndexRequest
from assay.core.records import Dependency
from assay.pjobs.requests import ArchiveIndexRequest, IndexRequest, ProductIndexRequest

DEFAULT_INDEX_CONTEXT = "pipelinejobs"
_SHA_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class IndexTarget:
    """What the indexer needs to know about a job."""

    job_id: str
    pipeline_uuid: str
    folder: Path
    child_of: tuple[str, ...]
    requests: tuple[IndexRequest, ...]


def scan_folder(folder: Path) -> list[SourceFile]:
    """Every regular file below ``folder``, sorted by relative path; symlinks are skipped."""
    found: list[SourceFile] = []
    root = str(folder)
    for directory, subdirs, names in os.walk(root, followlinks=False):
        subdirs.sort()
        relative_dir = os.path.relpath(directory, root)
        for name in names:
            source = os.path.join(directory, name)
            info = os.lstat(source)
            if not stat_module.S_ISREG(info.st_mode):
                continue  # symlinks, pipes, sockets: never indexed
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            found.append(SourceFile(relative.replace(os.sep, "/"), source, info))
    found.sort(key=lambda f: f.bundle_path)
    return found


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_SHA_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _resolve(workspace: Workspace, context: str, references: tuple[str, ...]) -> list[str]:
    uuids = []
    for reference in references:
        try:
            uuids.append(operations.resolve(workspace, context, reference).uuid)
        except BundleNotFound:
            raise InvalidIndexRequest(
                f"derived_from/derived_using reference {reference!r} is not a bundle in "
                f"context {context!r}"
            ) from None
    return uuids


def index_archive(
    workspace: Workspace,
    target: IndexTarget,
    *,
    context: str = DEFAULT_INDEX_CONTEXT,
    heartbeat: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Index ``target``'s archive folder; returns ``{"bundles": [...], "files_seen": n,
    "files_indexed": n, "unmatched": n}``."""
    operations.create_context(workspace, context)
    files = scan_folder(target.folder) if target.folder.is_dir() else []
    matched_any: set[str] = set()
    bundles: list[dict[str, Any]] = []
    for number, request in enumerate(target.requests):
        compiled = [re.compile(p) for p in request.patterns]
        chosen = [f for f in files if any(rx.search(f.bundle_path) for rx in compiled)]
        matched_any.update(f.bundle_path for f in chosen)
        if heartbeat is not None:
            heartbeat()
        if not chosen:
            bundles.append({"kind": request.kind, "request": number, "uuid": None, "files": 0})
            continue
        dependencies = [Dependency(target.job_id, "generated_by", "pipelinejob")]
        tags = {
            "pipelinejob": target.job_id,
            "pipeline": target.pipeline_uuid,
            "index_kind": request.kind,
        }
        if isinstance(request, ArchiveIndexRequest):
            tags["level"] = request.level
            dependencies += [Dependency(u, "child_of", "upstream") for u in target.child_of]
        elif isinstance(request, ProductIndexRequest):
            dependencies += [
                Dependency(u, "derived_from", "derived_from")
                for u in _resolve(workspace, context, request.derived_from)
            ]
            dependencies += [
                Dependency(u, "acted_using", "derived_using")
                for u in _resolve(workspace, context, request.derived_using)
            ]
        params: dict[str, Any] = {
            "patterns": list(request.patterns),
            "fixity": list(request.fixity),
        }
        if request.note:
            params["note"] = request.note
        if "sha256" in request.fixity:
            params["sha256"] = {f.bundle_path: sha256_file(f.source) for f in chosen}
        record = operations.create_bundle(
            workspace,
            context,
            f"pjob-{target.job_id}-{request.kind}-{number}",
            None,
            files=chosen,
            tags=tags,
            dependencies=dependencies,
            params=params,
            processing_name=f"pipelinejob:{target.job_id}",
            reuse_identical=True,
        )
        bundles.append(
            {"kind": request.kind, "request": number, "uuid": record.uuid, "files": len(chosen)}
        )
    return {
        "context": context,
        "bundles": bundles,
        "files_seen": len(files),
        "files_indexed": len(matched_any),
        "unmatched": len(files) - len(matched_any),
    }
