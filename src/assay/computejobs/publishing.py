"""PUBLISHING, on the control side: a job's ``outputs/`` and ``logs/`` become ONE bundle.

When the algorithm's process has ended, every regular file under ``outputs/`` and ``logs/`` of
the job's working directory is stored as one bundle, ``compute/job-<job id>``, written in one
catalog transaction (blobs first), so a crash leaves no half result. Lineage:

- links ``acted_on`` -> every input bundle (the key is the link's arg name) and, for an
  algorithm bundle, ``acted_using`` -> that bundle;
- tags ``job_id``, ``consumer``, ``generated_by`` (``<algorithm id>#<code hash prefix>``),
  ``algorithm_code_hash``, ``job_outcome`` (``finished`` / ``failed`` / ``stopped``) and
  ``output_count``; ``code_version`` holds the algorithm id, its full code hash and the job id.

Symbolic links and special files in ``outputs/`` are not followed (a link could name a file
the sandbox hid, such as the store); they are skipped and named in ``logs/publish.log``.

Results are listed by index, outputs first (sorted by path), then the logs, each as Ocean's
provider lists them: ``{"index", "filename", "filesize", "type"}`` with ``type`` one of
``output``, ``algorithmLog``, ``configurationLog``, ``publishLog``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assay.bundles import operations, views
from assay.bundles.ingest import SourceFile
from assay.bundles.workspace import Workspace
from assay.computejobs.staging import log
from assay.core.errors import ResultNotFound
from assay.core.records import BundleRecord, Dependency

OUTPUT_CONTEXT = "compute"
PUBLISH_LOG = "publish.log"
RESULT_TYPES = ("output", "algorithmLog", "configurationLog", "publishLog")
_TYPE_ORDER = {name: position for position, name in enumerate(RESULT_TYPES)}


def output_bundle_name(job_id: str) -> str:
    return f"job-{job_id}"


def _log_type(filename: str) -> str:
    if "configuration" in filename:
        return "configurationLog"
    if "publish" in filename:
        return "publishLog"
    return "algorithmLog"


def result_type(bundle_path: str) -> str:
    return "output" if bundle_path.startswith("outputs/") else _log_type(bundle_path)


def _regular_files(root: Path, prefix: str, skipped: list[str]) -> list[SourceFile]:
    """Regular files below ``root`` without following any symbolic link."""
    found: list[SourceFile] = []
    if not root.is_dir() or root.is_symlink():
        return found
    for directory, subdirs, filenames in os.walk(root, followlinks=False):
        subdirs.sort()
        for name in sorted(filenames) + [d for d in subdirs if os.path.islink(Path(directory, d))]:
            full = Path(directory, name)
            relative = f"{prefix}/{full.relative_to(root).as_posix()}"
            info = os.lstat(full)
            if stat.S_ISREG(info.st_mode):
                found.append(SourceFile(relative, str(full), info))
            else:
                skipped.append(relative)
    return found


def publish_outputs(
    workspace: Workspace,
    job_id: str,
    workdir: Path,
    *,
    consumer: str,
    algorithm: dict[str, Any],
    inputs: Sequence[dict[str, Any]],
    outcome: str,
    algorithm_bundle_uuid: str | None = None,
) -> BundleRecord:
    """Index the job's outputs and logs into its output bundle (see the module docstring)."""
    skipped: list[str] = []
    outputs = _regular_files(workdir / "outputs", "outputs", skipped)
    size = sum(f.stat.st_size for f in outputs)
    lines = [f"job {job_id} ended: {outcome}"]
    lines += [f"skipped {path}: not a regular file (links are not followed)" for path in skipped]
    if outputs:
        lines.append(f"indexing {len(outputs)} output files ({size} bytes)")
    else:
        lines.append("outputs/ is empty: the algorithm wrote no output files")
    lines.append(f"committing bundle {OUTPUT_CONTEXT}/{output_bundle_name(job_id)}")
    log(workdir, PUBLISH_LOG, lines)
    logs = _regular_files(workdir / "logs", "logs", [])
    dependencies = [Dependency(item["uuid"], "acted_on", item["key"]) for item in inputs]
    if algorithm_bundle_uuid is not None:
        dependencies.append(Dependency(algorithm_bundle_uuid, "acted_using", "algorithm"))
    code_hash = str(algorithm.get("code_hash", ""))
    operations.create_context(workspace, OUTPUT_CONTEXT)
    return operations.create_bundle(
        workspace,
        OUTPUT_CONTEXT,
        output_bundle_name(job_id),
        None,
        files=sorted(outputs + logs, key=lambda f: f.bundle_path),
        tags={
            "job_id": job_id,
            "consumer": consumer,
            "generated_by": f"{algorithm.get('id')}#{code_hash[:16]}",
            "algorithm_code_hash": code_hash,
            "job_outcome": outcome,
            "output_count": len(outputs),
        },
        dependencies=dependencies,
        params={"algorithm": algorithm, "inputs": [dict(item) for item in inputs]},
        processing_name=str(algorithm.get("id") or "compute"),
        owner=consumer,
        code_version={"algorithm": algorithm.get("id"), "code_hash": code_hash, "job_id": job_id},
    )


def output_bundle(workspace: Workspace, job_id: str) -> BundleRecord | None:
    """The newest output bundle of the job, or None (not published yet, or nothing ran)."""
    with workspace.read() as conn:
        from assay.catalog import queries

        if queries.context_id(conn, OUTPUT_CONTEXT) is None:
            return None
    return operations.get(workspace, OUTPUT_CONTEXT, output_bundle_name(job_id))


def list_results(workspace: Workspace, job_id: str) -> list[dict[str, Any]]:
    """The job's results by index (see the module docstring); [] before publishing."""
    record = output_bundle(workspace, job_id)
    if record is None:
        return []
    entries = sorted(
        operations.files_of(workspace, record),
        key=lambda e: (_TYPE_ORDER[result_type(e.path)], e.path),
    )
    return [
        {
            "index": index,
            "filename": entry.path.split("/", 1)[1],
            "filesize": entry.size,
            "type": result_type(entry.path),
            "path": entry.path,
            "content_hash": entry.blob_hash,
        }
        for index, entry in enumerate(entries)
    ]


def result_path(workspace: Workspace, job_id: str, index: int) -> tuple[dict[str, Any], Path]:
    """Result ``index`` of the job and a read-only local file holding it."""
    results = list_results(workspace, job_id)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(results):
        valid = f"0..{len(results) - 1}" if results else "none (the job has no results yet)"
        raise ResultNotFound(
            f"job {job_id} has no result {index!r}: valid indexes are {valid}",
            details={"job_id": job_id, "index": index, "result_count": len(results)},
        )
    record = output_bundle(workspace, job_id)
    assert record is not None
    root = views.bundle_view(workspace, record)
    return results[index], root / results[index]["path"]
