"""The timed steps: the references (BLAKE3, cp), the peers (Disdat, DVC) and Assay.

Each step takes a data set and a fresh, empty scratch folder on the same disk, and returns
the wall-clock seconds of one or more named rows. Start-up of the peers' interpreters is kept
out of the Disdat and Assay rows by timing inside a small script run in their own venv; the
DVC rows are the wall clock of the ``dvc`` command, start-up included.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3

from ingestbench.datasets import Dataset

TIMERS_DIR = Path(__file__).resolve().parent / "timers"
_TIMEOUT_S = 1800
_CONTEXT = "bench"
_BUNDLE = "ingest"


class StepError(RuntimeError):
    """A step could not run or failed; the message says why, and the row records it."""


@dataclass(frozen=True)
class Outcome:
    """What one try of a step measured: seconds per row, and untimed facts about it."""

    seconds: dict[str, float]
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """A measurement: its name, the rows it yields and the function that runs one try."""

    name: str
    rows: tuple[str, ...]
    run: Callable[[Dataset, Path], Outcome]


@dataclass(frozen=True)
class Tools:
    """The interpreters and commands the steps call; ``None`` with a reason when missing."""

    assay_python: str
    disdat_python: Path | None
    dvc: Path | None
    missing: dict[str, str] = field(default_factory=dict)


def settle() -> None:
    """Flush dirty pages so one step's writes are not paid for by the next step's clock."""
    os.sync()


def tree_bytes(path: Path) -> int:
    """Bytes of all regular files under ``path`` (or of ``path`` itself)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.lstat(os.path.join(root, name)).st_size for name in files)
    return total


def _environment(**extra: str) -> dict[str, str]:
    """The parent's environment without anything that would leak one venv into another."""
    dropped = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
    prefixes = ("ASSAY_", "DISDAT_", "DVC_")  # each tool runs on its defaults
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith(prefixes)}
    env["DVC_NO_ANALYTICS"] = "1"
    env.update(extra)
    return env


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run ``command``; its wall-clock seconds, or StepError with its output on failure."""
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise StepError(f"`{' '.join(command)}` exited {result.returncode}: {' | '.join(output)}")
    return seconds


def _run_timer(python: str, script: str, cwd: Path, env: dict[str, str], path: Path) -> dict:
    """Run a timer script; the JSON it printed last, or StepError with its error."""
    command = [python, str(TIMERS_DIR / script), _CONTEXT, _BUNDLE, str(path)]
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = " | ".join(result.stderr.strip().splitlines()[-5:])
        raise StepError(f"{script} exited {result.returncode} without a result: {tail}")
    record: dict = json.loads(lines[-1])
    if "error" in record:
        raise StepError(record["error"])
    return record


def blake3_seconds(dataset: Dataset, threads: int) -> float:
    """Raw BLAKE3 over the data set's bytes: mmap for one file, read-and-hash per small file."""
    start = time.perf_counter()
    if dataset.files == 1:
        hasher = blake3.blake3(max_threads=threads)
        hasher.update_mmap(str(dataset.path))
        hasher.digest()
    else:
        for root, _dirs, files in os.walk(dataset.path):
            for name in files:
                with open(os.path.join(root, name), "rb") as handle:
                    blake3.blake3(handle.read(), max_threads=threads).digest()
    return time.perf_counter() - start


def _blake3_step(row: str, threads: int) -> Step:
    def run(dataset: Dataset, _scratch: Path) -> Outcome:
        settle()
        return Outcome({row: blake3_seconds(dataset, threads)})

    return Step(row, (row,), run)


def _cp(dataset: Dataset, scratch: Path) -> Outcome:
    target = scratch / dataset.path.name
    flags = ["-r"] if dataset.path.is_dir() else []
    settle()
    seconds = _run(["cp", *flags, str(dataset.path), str(target)], scratch, _environment())
    return Outcome({"cp": seconds}, {"stored_bytes": tree_bytes(target)})


def _pack_floor(dataset: Dataset, scratch: Path) -> Outcome:
    """The one-pack-file floor: one Python thread reads every file and appends its bytes to a
    single file in 8 MiB writes (no hashing, no index): what packing cannot beat."""
    target = scratch / "one.pack"
    settle()
    start = time.perf_counter()
    with open(target, "wb", buffering=0) as out:
        buffer = bytearray()
        if dataset.path.is_file():
            walked = [(str(dataset.path.parent), [], [dataset.path.name])]
        else:
            walked = list(os.walk(dataset.path))
        for root, _dirs, files in walked:
            for name in sorted(files):
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
                try:
                    buffer += os.read(fd, 1 << 30)
                finally:
                    os.close(fd)
                if len(buffer) >= 8 << 20:
                    out.write(buffer)
                    buffer = bytearray()
        out.write(buffer)
    return Outcome(
        {"pack_floor": time.perf_counter() - start}, {"stored_bytes": tree_bytes(target)}
    )


def _disdat_step(python: Path) -> Step:
    def run(dataset: Dataset, scratch: Path) -> Outcome:
        home = scratch / "home"
        home.mkdir()
        settle()
        env = _environment(HOME=str(home))
        record = _run_timer(str(python), "disdat_add.py", scratch, env, dataset.path)
        return Outcome({"disdat_add": record["add"]}, {"stored_bytes": tree_bytes(home)})

    return Step("disdat_add", ("disdat_add",), run)


def _assay_step(python: str) -> Step:
    def run(dataset: Dataset, scratch: Path) -> Outcome:
        home = scratch / "assay-home"
        home.mkdir()
        settle()
        env = _environment(ASSAY_HOME=str(home))
        record = _run_timer(python, "assay_add.py", scratch, env, dataset.path)
        seconds = {"assay_add": record["add"], "assay_readd_unchanged": record["readd"]}
        return Outcome(seconds, {"stored_bytes": tree_bytes(home)})

    return Step("assay_add", ("assay_add", "assay_readd_unchanged"), run)


def _dvc_repo(dvc: Path, scratch: Path) -> tuple[Path, dict[str, str]]:
    """A fresh git + DVC repository whose state database lives in the scratch folder too."""
    repo = scratch / "repo"
    repo.mkdir()
    env = _environment(HOME=str(scratch / "home"))
    _run(["git", "init", "-q"], repo, env)
    _run([str(dvc), "init", "-q"], repo, env)
    _run([str(dvc), "config", "core.site_cache_dir", str(scratch / "site-cache")], repo, env)
    return repo, env


def _dvc_add_step(dvc: Path) -> Step:
    """``dvc add`` twice: the first ingests, the second finds the data unchanged.

    The data is renamed into the repository (same disk, so no bytes move) and back after.
    """

    def run(dataset: Dataset, scratch: Path) -> Outcome:
        repo, env = _dvc_repo(dvc, scratch)
        inside = repo / dataset.path.name
        dataset.path.rename(inside)
        try:
            settle()
            add = _run([str(dvc), "add", "-q", inside.name], repo, env)
            readd = _run([str(dvc), "add", "-q", inside.name], repo, env)
        finally:
            inside.rename(dataset.path)
        cache = tree_bytes(repo / ".dvc" / "cache")
        return Outcome({"dvc_add": add, "dvc_readd_unchanged": readd}, {"stored_bytes": cache})

    return Step("dvc_add", ("dvc_add", "dvc_readd_unchanged"), run)


def _dvc_startup_step(dvc: Path) -> Step:
    """DVC's fixed cost: ``dvc --version``, and ``dvc add`` of a one-byte file."""

    def run(dataset: Dataset, scratch: Path) -> Outcome:
        repo, env = _dvc_repo(dvc, scratch)
        (repo / "tiny.bin").write_bytes(dataset.path.read_bytes())
        settle()
        version = _run([str(dvc), "--version"], repo, env)
        tiny = _run([str(dvc), "add", "-q", "tiny.bin"], repo, env)
        return Outcome({"dvc_version": version, "dvc_add_tiny": tiny})

    return Step("dvc_startup", ("dvc_version", "dvc_add_tiny"), run)


def _unavailable(name: str, rows: tuple[str, ...], reason: str) -> Step:
    def run(_dataset: Dataset, _scratch: Path) -> Outcome:
        raise StepError(reason)

    return Step(name, rows, run)


def data_steps(tools: Tools) -> list[Step]:
    """The steps run on each data set, in their un-rotated order."""
    steps = [
        _blake3_step("blake3_1thread", 1),
        _blake3_step("blake3_threaded", blake3.blake3.AUTO),
        Step("cp", ("cp",), _cp),
        Step("pack_floor", ("pack_floor",), _pack_floor),
    ]
    if tools.disdat_python is None:
        steps.append(_unavailable("disdat_add", ("disdat_add",), tools.missing["disdat"]))
    else:
        steps.append(_disdat_step(tools.disdat_python))
    dvc_rows = ("dvc_add", "dvc_readd_unchanged")
    if tools.dvc is None:
        steps.append(_unavailable("dvc_add", dvc_rows, tools.missing["dvc"]))
    else:
        steps.append(_dvc_add_step(tools.dvc))
    if "assay" in tools.missing:
        rows = ("assay_add", "assay_readd_unchanged")
        steps.append(_unavailable("assay_add", rows, tools.missing["assay"]))
    else:
        steps.append(_assay_step(tools.assay_python))
    return steps


def startup_steps(tools: Tools) -> list[Step]:
    """The steps run on the one-byte start-up data set."""
    rows = ("dvc_version", "dvc_add_tiny")
    if tools.dvc is None:
        return [_unavailable("dvc_startup", rows, tools.missing["dvc"])]
    return [_dvc_startup_step(tools.dvc)]
