"""Staging a compute job's datasets (the PROVISIONING step, on the control side).

Every dataset of the job (additional ones too) is materialised from verified blobs (copies or
reflinks, never links into the store) into ``$ASSAY_HOME/compute-staging/<job id>/inputs/<key>/``;
the executor then lays out the job's working directory from those folders (bound read-only in
the sandbox, copied read-only without one), close to Ocean's ``/data``::

    <workdir>/inputs/<key>/<file paths of the bundle>   every dataset
    <workdir>/inputs/algoCustomData.json                the algorithm's custom data
    <workdir>/transformations/algorithm                 the algorithm's code (raw / bundle)
    <workdir>/outputs/                                  what the algorithm writes
    <workdir>/logs/                                     algorithm.log (executor), and at
                                                        publishing configuration.log, publish.log

The job finds them through ``INPUTS``, ``OUTPUTS``, ``LOGS``, ``DIDS`` (the JSON list of keys),
``ALGO`` and ``TRANSFORMATION_DID``, so an Ocean-style algorithm runs unchanged. A dataset's key
is its bundle name (a second dataset with the same name gets ``name-2``), or the key its
``ComputeInput`` gives. What staging did is kept in ``configuration.log`` beside the staged
folders and copied into the job's ``logs/`` when it is published. The staged copies are deleted
when the job has been published.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.bundles import operations, views
from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidInput
from assay.core.records import BundleRecord
from assay.jobs.policies import AccessPolicy

CUSTOM_DATA_FILE = "algoCustomData.json"
CONFIGURATION_LOG = "configuration.log"

# A dataset key names a folder under inputs/: plain characters only (no separators, no "..").
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class StagedInput:
    """One dataset of a job: its key under ``inputs/``, its bundle and its access policy."""

    key: str
    record: BundleRecord
    policy: AccessPolicy
    userdata: Mapping[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "dataset": f"assay://{self.record.context}/{self.record.name}@{self.record.uuid}",
            "content_hash": self.record.content_hash,
            "access": self.policy.access,
            "userdata": dict(self.userdata) if self.userdata is not None else None,
        }


def unique_keys(wanted: Sequence[str | None], names: Sequence[str]) -> list[str]:
    """Keys for the datasets: the wanted key, else the bundle name; repeats get ``-2``, ``-3``."""
    keys: list[str] = []
    for key, name in zip(wanted, names, strict=True):
        if key is not None:
            if not isinstance(key, str) or not _KEY_PATTERN.fullmatch(key):
                raise InvalidInput(
                    f"dataset key {key!r}: use letters, digits, '.', '_' or '-' (no slashes)"
                )
            if key in keys:
                raise InvalidInput(f"two datasets of the job have the key {key!r}")
            candidate = key
        else:
            candidate, n = name, 2
            while candidate in keys or candidate in wanted:
                candidate, n = f"{name}-{n}", n + 1
        if candidate == CUSTOM_DATA_FILE:
            raise InvalidInput(f"dataset key {candidate!r} is reserved for the custom data")
        keys.append(candidate)
    return keys


def staging_dir_of(workspace: Workspace, job_id: str) -> Path:
    return workspace.settings.home / "compute-staging" / job_id


def stage_inputs(
    workspace: Workspace,
    staging_dir: Path,
    inputs: Sequence[StagedInput],
    custom_data: Any,
) -> dict[str, Path]:
    """Materialise every dataset under ``staging_dir/inputs/<key>/``; returns ``{key: folder}``
    and writes what it did to ``staging_dir/configuration.log``."""
    remove_tree(staging_dir)
    staged: dict[str, Path] = {}
    lines: list[str] = []
    for item in inputs:
        folder = staging_dir / "inputs" / item.key
        files = operations.files_of(workspace, item.record)
        if files:
            views.materialize_files(workspace, files, folder, record=False)
        else:  # a bundle of values (no files): its document, so the algorithm sees the data
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "data.json").write_text(
                json.dumps(item.record.data, sort_keys=True), encoding="utf-8"
            )
        staged[item.key] = folder
        size = sum(entry.size for entry in files)
        lines.append(
            f"staged {item.key}: {item.record.context}/{item.record.name}@{item.record.uuid} "
            f"({len(files)} files, {size} bytes, {item.policy.access} access)"
        )
    if custom_data is not None:
        try:
            text = json.dumps(custom_data, sort_keys=True)
        except (TypeError, ValueError) as error:
            raise InvalidInput(f"algorithm_algocustomdata is not JSON: {error}") from None
        lines.append(f"custom data for inputs/{CUSTOM_DATA_FILE}: {len(text)} bytes")
    staging_dir.mkdir(parents=True, exist_ok=True)
    append_log(staging_dir / CONFIGURATION_LOG, lines)
    return staged


def algorithm_environment(algorithm_id: str, algo_path: Path | None) -> dict[str, str]:
    """The variables the job gets beyond the executor's (``INPUTS``, ``OUTPUTS``, ``LOGS``,
    ``DIDS``, ``TMPDIR``, ``HOME``): which algorithm runs and where its code is."""
    env = {"TRANSFORMATION_DID": algorithm_id}
    if algo_path is not None:
        env["ALGO"] = str(algo_path)
    return env


def append_log(path: Path, lines: Sequence[str]) -> None:
    """Append time-stamped lines to the log file ``path``."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(f"{stamp} {line}\n")


def log(workdir: Path, filename: str, lines: Sequence[str]) -> None:
    """Append time-stamped lines to the job's ``logs/<filename>``."""
    append_log(workdir / "logs" / filename, lines)


def remove_tree(path: Path) -> None:
    """Remove a staged tree whose files may be read-only (only folders need to be writable)."""
    if not path.exists():
        return
    for directory, _subdirs, _files in os.walk(path):
        os.chmod(directory, 0o755)
    shutil.rmtree(path)


def finish_staging(staging_dir: Path, workdir: Path) -> None:
    """Copy the configuration log into the job's ``logs/`` (the executor empties ``logs/``
    when the job starts, so this happens at publishing)."""
    source = staging_dir / CONFIGURATION_LOG
    if source.exists():
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, workdir / "logs" / CONFIGURATION_LOG)


def remove_staged(staging_dir: Path, workdir: Path) -> None:
    """Drop every copy of the datasets: the staging folder and the job's ``inputs/``
    (compute-only data must not linger on disk)."""
    remove_tree(staging_dir)
    remove_tree(workdir / "inputs")
