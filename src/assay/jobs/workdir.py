"""A job's working directory, laid out as an Ocean compute-to-data algorithm expects.

::

    WORKDIR/
      inputs/<key>/...            one folder per input (a file input keeps its file name)
      inputs/algoCustomData.json  the algorithm's custom data ({} when none)
      outputs/                    what the job produces (published by the control side)
      logs/algorithm.log          the job's stdout and stderr, interleaved
      tmp/                        scratch (TMPDIR)

The job finds the paths in ``INPUTS``, ``OUTPUTS`` and ``LOGS``; ``DIDS`` is the JSON list of
input keys (Ocean passes dataset DIDs there: ``json.loads(os.environ["DIDS"])``), and
``ASSAY_JOB_ID`` names the job. Unisolated jobs get copies of their inputs, made read-only; in
the sandbox, inputs are bound read-only instead of copied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from assay.core.errors import InvalidInput
from assay.jobs.process import JOB_MARKER

CUSTOM_DATA_FILE = "algoCustomData.json"
ALGORITHM_LOG = "algorithm.log"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
#: What a job's environment always has (the rest comes from the caller: never ASSAY_HOME, the
#: catalog URL or the control side's credentials).
_BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")


@dataclass(frozen=True)
class JobDirs:
    root: Path
    inputs: Path
    outputs: Path
    logs: Path
    tmp: Path

    @property
    def algorithm_log(self) -> Path:
        return self.logs / ALGORITHM_LOG


def layout(workdir: Path) -> JobDirs:
    root = Path(workdir).absolute()
    return JobDirs(root, root / "inputs", root / "outputs", root / "logs", root / "tmp")


def check_inputs(inputs: Mapping[str, Path]) -> None:
    """Input keys are safe folder names; each source exists."""
    for key, source in inputs.items():
        if not _KEY.match(key) or key == CUSTOM_DATA_FILE or key in (".", ".."):
            raise InvalidInput(f"input key {key!r}: use letters, digits, '_', '.', ':', '-'")
        if not Path(source).exists():
            raise InvalidInput(f"input {key!r}: {source} does not exist")


def _clear(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            if child.is_dir() and not child.is_symlink():
                child.chmod(child.stat().st_mode | stat.S_IWUSR)
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _read_only(path: Path) -> None:
    for child in [*path.rglob("*"), path]:
        if child.is_symlink():
            continue
        mode = child.stat().st_mode
        child.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def prepare(
    workdir: Path,
    inputs: Mapping[str, Path],
    custom_data: object = None,
    *,
    copy_inputs: bool = True,
) -> tuple[JobDirs, dict[Path, Path]]:
    """Lay out ``workdir`` (a re-run starts with empty inputs, outputs, logs and tmp).

    With ``copy_inputs`` the inputs are copied in and made read-only; otherwise empty mount
    points are made and the ``{target: source}`` read-only binds for the sandbox returned.
    """
    check_inputs(inputs)
    dirs = layout(workdir)
    dirs.root.mkdir(parents=True, exist_ok=True)
    for folder in (dirs.inputs, dirs.outputs, dirs.logs, dirs.tmp):
        _clear(folder)
        folder.mkdir()
    binds: dict[Path, Path] = {}
    for key, raw_source in inputs.items():
        source = Path(raw_source).resolve()
        target = dirs.inputs / key
        if source.is_dir():
            target_path = target
        else:
            target.mkdir()
            target_path = target / source.name
        if copy_inputs:
            if source.is_dir():
                shutil.copytree(source, target_path, symlinks=False)
            else:
                shutil.copy2(source, target_path)
            _read_only(target)
        else:
            if source.is_dir():
                target_path.mkdir(exist_ok=True)
            else:
                target_path.touch()
            binds[target_path] = source
    (dirs.inputs / CUSTOM_DATA_FILE).write_text(
        json.dumps(custom_data if custom_data is not None else {}, ensure_ascii=False)
    )
    return dirs, binds


def job_environment(
    dirs: JobDirs,
    job_id: str,
    input_keys: list[str],
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment variables of a job's process."""
    env = {name: os.environ[name] for name in _BASE_ENV if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        {
            "HOME": str(dirs.root),
            "TMPDIR": str(dirs.tmp),
            "INPUTS": str(dirs.inputs),
            "OUTPUTS": str(dirs.outputs),
            "LOGS": str(dirs.logs),
            "DIDS": json.dumps(input_keys),
            "ASSAY_WORKDIR": str(dirs.root),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    env[JOB_MARKER] = job_id  # last: the caller cannot remove the marker reconcile relies on
    return env


def output_files(dirs: JobDirs, limit: int = 1000) -> list[str]:
    """Relative paths of the files in ``outputs/`` (at most ``limit``, sorted)."""
    if not dirs.outputs.is_dir():
        return []
    found = sorted(str(p.relative_to(dirs.outputs)) for p in dirs.outputs.rglob("*") if p.is_file())
    return found[:limit]
