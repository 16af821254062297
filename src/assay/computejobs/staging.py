"""Staging a compute job's working directory (the PROVISIONING step, on the control side).

Layout, close to Ocean's ``/data``, so an Ocean-style algorithm runs unchanged when pointed at
it through the environment variables the job gets (``INPUTS``, ``OUTPUTS``, ``LOGS``, ``DIDS``,
``ALGO``, ``TRANSFORMATION_DID``)::

    <workdir>/inputs/<key>/<file paths of the bundle>   every dataset, additional ones too
    <workdir>/inputs/algoCustomData.json                the algorithm's custom data (if any)
    <workdir>/transformations/algorithm                 the algorithm's code (raw / bundle)
    <workdir>/outputs/                                  what the algorithm writes
    <workdir>/logs/                                     algorithm.log (executor), configuration.log

A dataset's key is its bundle name (a second dataset with the same name gets ``name-2``), or
the key its ``ComputeInput`` gives. Files are materialised from verified blobs (copies or
reflinks, never links into the store), so nothing a job does can change the store.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.bundles import operations, views
from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidInput
from assay.core.names import NAME_PATTERN
from assay.core.records import BundleRecord
from assay.jobs.policies import AccessPolicy

CUSTOM_DATA_FILE = "algoCustomData.json"
CONFIGURATION_LOG = "configuration.log"


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
        }


def unique_keys(wanted: Sequence[str | None], names: Sequence[str]) -> list[str]:
    """Keys for the datasets: the wanted key, else the bundle name; repeats get ``-2``, ``-3``."""
    keys: list[str] = []
    for key, name in zip(wanted, names, strict=True):
        if key is not None:
            if not isinstance(key, str) or not NAME_PATTERN.fullmatch(key):
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


def make_layout(workdir: Path) -> None:
    for folder in ("inputs", "outputs", "logs"):
        (workdir / folder).mkdir(parents=True, exist_ok=True)


def stage_inputs(
    workspace: Workspace,
    workdir: Path,
    inputs: Sequence[StagedInput],
    custom_data: Any,
) -> dict[str, Path]:
    """Materialise every dataset under ``inputs/<key>/`` and write the custom data; returns
    ``{key: folder}``. Appends what it did to ``logs/configuration.log``."""
    make_layout(workdir)
    staged: dict[str, Path] = {}
    lines: list[str] = []
    for item in inputs:
        folder = workdir / "inputs" / item.key
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
        (workdir / "inputs" / CUSTOM_DATA_FILE).write_text(text, encoding="utf-8")
        lines.append(f"wrote inputs/{CUSTOM_DATA_FILE} ({len(text)} bytes)")
    log(workdir, CONFIGURATION_LOG, lines)
    return staged


def job_environment(
    workdir: Path, keys: Sequence[str], algorithm_id: str, algo_path: Path | None
) -> dict[str, str]:
    """The variables an Ocean-style algorithm reads (absolute paths)."""
    env = {
        "INPUTS": str(workdir / "inputs"),
        "OUTPUTS": str(workdir / "outputs"),
        "LOGS": str(workdir / "logs"),
        "DIDS": json.dumps(list(keys)),
        "TRANSFORMATION_DID": algorithm_id,
        "TMPDIR": str(workdir / "tmp"),
    }
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    if algo_path is not None:
        env["ALGO"] = str(algo_path)
    return env


def log(workdir: Path, filename: str, lines: Sequence[str]) -> None:
    """Append time-stamped lines to ``logs/<filename>``."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    with open(workdir / "logs" / filename, "a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(f"{stamp} {line}\n")


def remove_inputs(workdir: Path) -> None:
    """Drop the staged copies of the datasets (compute-only data must not linger on disk).
    Files may be read-only: only their folders need to be writable to remove them."""
    inputs = workdir / "inputs"
    if not inputs.exists():
        return
    for directory, _subdirs, _files in os.walk(inputs):
        os.chmod(directory, 0o755)
    shutil.rmtree(inputs)
