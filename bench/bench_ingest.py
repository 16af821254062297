"""Ingest benchmark: Assay's ``api.add`` against raw BLAKE3, cp, Disdat 1.2 and DVC.

Run with Assay's interpreter::

    .venv/bin/python bench/bench_ingest.py           # 1 GiB file + 10,000 x 10 KiB files
    .venv/bin/python bench/bench_ingest.py --quick   # 128 MiB + 2,000 files, a smoke run

Every figure is the best of N tries (3 by default), each into a fresh target on the same disk,
with the order of the tools rotated between tries. Results go to ``bench/results/``; see
``bench/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import blake3
import peers
from ingestbench import report
from ingestbench.datasets import Dataset, describe, ensure_datasets, read_all, startup_dataset
from ingestbench.machine import git_state, load_average, machine_info
from ingestbench.steps import Step, StepError, Tools, data_steps, startup_steps

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
RESULTS_DIR = BENCH_DIR / "results"
SMALL_FILE_BYTES = 10 * 1024
SIZES = {
    "full": {"big_bytes": 1024 * 2**20, "small_count": 10_000},
    "quick": {"big_bytes": 128 * 2**20, "small_count": 2_000},
}


@dataclass
class Collected:
    """Raw measurements keyed by data set, then by row."""

    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    facts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def probe_assay() -> str | None:
    """None when ``import assay.api`` works in Assay's interpreter, else why it does not."""
    command = [sys.executable, "-c", "import assay.api"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode == 0:
        return None
    last = (result.stderr.strip().splitlines() or ["exit status " + str(result.returncode)])[-1]
    return f"not available: {last}"


def prepare_tools(peer_versions: dict[str, str]) -> Tools:
    """The interpreters each step needs, with the reason for every one that is missing."""
    missing = {
        name: "not available: " + version.removeprefix("error: ")
        for name, version in peer_versions.items()
        if version.startswith("error:")
    }
    assay_error = probe_assay()
    if assay_error:
        missing["assay"] = assay_error
    dvc = peers.PEERS["dvc"].venv / "bin" / "dvc"
    return Tools(
        assay_python=sys.executable,
        disdat_python=None if "disdat" in missing else peers.PEERS["disdat"].python,
        dvc=None if "dvc" in missing else dvc,
        missing=missing,
    )


def _rotated(steps: list[Step], by: int) -> list[Step]:
    by %= len(steps)
    return steps[by:] + steps[:by]


def _run_step(step: Step, dataset: Dataset, scratch: Path, collected: Collected) -> None:
    """One try of one step into a fresh scratch folder; records seconds, facts or the error."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    read_all(dataset)  # every tool starts from cached input, whatever ran before it
    try:
        outcome = step.run(dataset, scratch)
    except (StepError, subprocess.TimeoutExpired) as error:
        for row in step.rows:
            collected.errors.setdefault(dataset.key, {})[row] = str(error)
        _log(f"    {step.name}: {error}")
        return
    finally:
        if not dataset.path.exists():  # a step that moves the data failed to move it back
            raise RuntimeError(f"{dataset.path} is missing after {step.name}; see {scratch}")
        shutil.rmtree(scratch, ignore_errors=True)
    for row, seconds in outcome.seconds.items():
        collected.samples.setdefault(dataset.key, {}).setdefault(row, []).append(seconds)
    collected.facts.setdefault(dataset.key, {})[step.rows[0]] = outcome.facts
    _log(f"    {step.name}: " + ", ".join(f"{r} {s:.3f} s" for r, s in outcome.seconds.items()))


def run_tries(plan: list[tuple[Dataset, list[Step]]], tries: int) -> Collected:
    """Every step on every data set, ``tries`` times, rotating the order of steps each time."""
    collected = Collected()
    for attempt in range(tries):
        for dataset, steps in plan:
            _log(f"try {attempt + 1}/{tries}, {dataset.label}:")
            for step in _rotated(steps, attempt):
                if any(row in collected.errors.get(dataset.key, {}) for row in step.rows):
                    continue  # it failed before: report that error, don't repeat it
                scratch = WORK_DIR / "scratch" / f"{step.name}-{dataset.key}-{attempt}"
                _run_step(step, dataset, scratch, collected)
    return collected


def _versions(peer_versions: dict[str, str]) -> dict[str, str | None]:
    try:
        assay_version: str | None = importlib.metadata.version("assay")
    except importlib.metadata.PackageNotFoundError:
        assay_version = None
    versions: dict[str, str | None] = {"assay": assay_version, "blake3": blake3.__version__}
    for name, version in peer_versions.items():
        versions[name] = None if version.startswith("error:") else version
    return versions


def _method(tries: int) -> dict[str, str]:
    return {
        "statistic": f"best of {tries} wall-clock seconds (minimum; the median is kept too)",
        "cache": "warm cache: page caches are not dropped; the input is read (untimed) right "
        "before each timed step, since idle page cache is reclaimed on this machine; os.sync() "
        "runs before each timed step, and the order of the tools is rotated between tries.",
        "targets": "each try writes into a fresh folder (cp destination, Disdat HOME, DVC "
        "repository, ASSAY_HOME) on the same disk as the inputs; it is deleted after the try.",
        "timing": "Disdat and Assay: only the add call, timed inside their own interpreter "
        "after import; DVC: wall clock of the `dvc add` command, start-up included; "
        "BLAKE3: in-process; cp: wall clock of the command.",
        "ratios": "reference_seconds / row_seconds (the row's throughput over the "
        "reference's); above 1 the row is faster than the reference.",
        "units": "GB = 1e9 bytes",
    }


def _write_outputs(record: dict[str, Any], text: str, quick: bool) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    stem = "ingest.quick" if quick else "ingest"
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS_DIR / f"{stem}.md").write_text(text)
    if not quick:
        report.update_readme(BENCH_DIR / "README.md", text)


def main() -> int:
    parser = argparse.ArgumentParser(description="Assay ingest benchmark")
    parser.add_argument("--quick", action="store_true", help="128 MiB and 2,000 files")
    parser.add_argument("--tries", type=int, default=3, help="tries per figure (best of)")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"

    _log("building peer venvs (skipped when current)...")
    peer_versions = peers.build_all(peers.default_python())
    tools = prepare_tools(peer_versions)
    for name, reason in tools.missing.items():
        _log(f"{name}: {reason}")

    data_dir = WORK_DIR / "data"
    _log(f"preparing data under {data_dir} ...")
    datasets = ensure_datasets(data_dir, small_size=SMALL_FILE_BYTES, **SIZES[mode])
    startup = startup_dataset(data_dir)
    plan = [(startup, startup_steps(tools))] + [(d, data_steps(tools)) for d in datasets]
    load_before = load_average()
    collected = run_tries(plan, args.tries)

    def summary(dataset: Dataset, startup_summary: report.Summary | None) -> report.Summary:
        key = dataset.key
        return report.summarise(
            dataset,
            collected.samples.get(key, {}),
            collected.errors.get(key, {}),
            collected.facts.get(key, {}),
            startup_summary,
        )

    results = {startup.key: summary(startup, None)}
    results.update({d.key: summary(d, results[startup.key]) for d in datasets})
    record: dict[str, Any] = {
        "benchmark": "ingest",
        "mode": mode,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(WORK_DIR),
        "load_average": {"before": load_before, "after": load_average()},
        "git": git_state(BENCH_DIR.parent),
        "versions": _versions(peer_versions),
        "peer_install": {
            name: {"requirement": peer.requirement, "lock_file": f"bench/locks/{name}.txt"}
            for name, peer in peers.PEERS.items()
        },
        "method": _method(args.tries),
        "datasets": {d.key: describe(d) for d in [*datasets, startup]},
        "results": results,
    }
    record["targets"] = report.check_targets(results)
    text = report.markdown(record, datasets, startup)
    _write_outputs(record, text, args.quick)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
