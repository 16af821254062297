"""CLI latency: ``assay --help``, ``--version``, shell completion, ``ls`` and ``search --tag``
at 1,000 bundles.

Run with Assay's interpreter::

    .venv/bin/python bench/bench_cli.py            # 1,000 bundles, best of 5
    .venv/bin/python bench/bench_cli.py --quick    # 200 bundles, best of 3
    .venv/bin/python bench/bench_cli.py --baseline /other/checkout/.venv/bin/assay

``--baseline`` times another build of Assay (e.g. the main branch's) in the same run, on the
same catalog, as rows ``baseline_*``: on a shared machine, the ratio to it says more than the
absolute figures.

Each figure is the wall clock of a fresh process (start-up included), best of N, next to
references measured in the same run: ``python -c pass`` (the interpreter's floor), ``git
--version`` and, when the ingest benchmark's DVC venv exists, ``dvc --version``. Results go to
``bench/results/cli.{json,md}``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import peers
from ingestbench.machine import load_average

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work" / "cli"
RESULTS_DIR = BENCH_DIR / "results"
ASSAY = str(Path(sys.executable).with_name("assay"))
TARGETS = {"assay_help": 0.15, "assay_ls": 0.3, "assay_search_tag": 0.3}
#: What bash asks ``assay`` for on TAB (the script ``assay --show-completion bash`` installs):
#: completing a command's name, and a command's options (which loads that one command).
COMPLETION = {
    "assay_complete_command": {"COMP_WORDS": "assay l", "COMP_CWORD": "1"},
    "assay_complete_option": {"COMP_WORDS": "assay search --", "COMP_CWORD": "2"},
}


def _populate(home: Path, count: int) -> None:
    """``count`` bundles (one small file each, tags) in context ``bench``; reused if present."""
    marker = home / f".populated-{count}"
    if marker.exists():
        return
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    script = f"""
import os, sys
from pathlib import Path
from assay import api
api.context("bench")
api.switch("bench")
src = Path({str(home)!r}) / "src"
src.mkdir()
for i in range({count}):
    f = src / f"b{{i}}.txt"
    f.write_text(str(i))
    api.add("bench", f"bundle-{{i:04}}", str(f), tags={{"team": f"t{{i % 10}}", "n": str(i)}})
"""
    env = {**os.environ, "ASSAY_HOME": str(home)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
    marker.touch()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_once(command: list[str], env: dict[str, str]) -> tuple[float, float] | str:
    """(wall seconds, CPU seconds: user + system) of one fresh process, or its error."""
    cpu_start = _children_cpu()
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        return result.stderr.decode(errors="replace").strip()[-300:]
    return seconds, _children_cpu() - cpu_start


def _time_all(
    commands: dict[str, list[str]], env: dict[str, str], tries: int
) -> dict[str, dict[str, Any]]:
    """Every command once per round, ``tries`` rounds (so a change of load on the shared
    machine hits all rows alike): best and median wall clock, and the best CPU time (less
    sensitive to other processes than the wall clock, though not immune)."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    errors: dict[str, str] = {}
    for _ in range(tries):
        for name, command in commands.items():
            if name in errors:
                continue
            outcome = _run_once(command, _env_for(name, env))
            if isinstance(outcome, str):
                errors[name] = outcome
            else:
                samples[name].append(outcome)
    results: dict[str, dict[str, Any]] = {}
    for name, rows in samples.items():
        if name in errors:
            results[name] = {"error": errors[name]}
            continue
        results[name] = {
            "seconds": min(wall for wall, _ in rows),
            "median_seconds": statistics.median(wall for wall, _ in rows),
            "cpu_seconds": min(cpu for _, cpu in rows),
        }
    return results


def _env_for(name: str, env: dict[str, str]) -> dict[str, str]:
    if name not in COMPLETION:
        return env
    return {**env, "_ASSAY_COMPLETE": "complete_bash", **COMPLETION[name]}


def _compile_bytecode() -> None:
    """Byte-compile Assay's own modules first, as an installed package has them: with
    ``PYTHONDONTWRITEBYTECODE`` set (as on the helpers' machines) a module edited since its
    last compile would be compiled from source by every timed process."""
    import assay

    compileall.compile_dir(Path(assay.__file__).parent, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description="Assay CLI latency benchmark")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline", help="another build's assay executable, timed alongside")
    args = parser.parse_args()
    count, tries = (200, 3) if args.quick else (1000, 5)
    home = WORK_DIR / f"home-{count}"
    _populate(home, count)
    _compile_bytecode()
    env = {**os.environ, "ASSAY_HOME": str(home)}
    dvc = peers.PEERS["dvc"].venv / "bin" / "dvc"
    commands: dict[str, list[str]] = {
        "python_pass": [sys.executable, "-c", "pass"],
        "git_version": ["git", "--version"],
        "assay_help": [ASSAY, "--help"],
        "assay_version": [ASSAY, "--version"],
        "assay_ls": [ASSAY, "ls"],
        "assay_search_tag": [ASSAY, "search", "--tag", "team=t3"],
    }
    for name in COMPLETION:
        commands[name] = [ASSAY]
    if args.baseline:
        for name in ("assay_help", "assay_ls", "assay_search_tag"):
            commands["baseline_" + name.removeprefix("assay_")] = [
                args.baseline,
                *commands[name][1:],
            ]
    if dvc.exists():
        commands["dvc_version"] = [str(dvc), "--version"]
    load_before = load_average()
    results = _time_all(commands, env, tries)
    floor = results["python_pass"].get("seconds")
    for name, row in results.items():
        if "seconds" in row and floor:
            row["minus_python_start"] = row["seconds"] - floor
        if name in TARGETS and "seconds" in row:
            row["target_seconds"] = TARGETS[name]
            row["met"] = row["seconds"] < TARGETS[name]
    record = {
        "benchmark": "cli",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "bundles": count,
        "tries": tries,
        "statistic": "best of N wall-clock seconds of a fresh process (median kept too), "
        "every command once per round; CPU seconds: best user + system time",
        "load_average": {"before": load_before, "after": load_average()},
        "results": results,
    }
    lines = [
        f"CLI benchmark ({record['generated_at']}): {count} bundles, best of {tries} fresh "
        f"processes. Load average (1 min) before / after: {load_before} / "
        f"{record['load_average']['after']} on {os.cpu_count()} CPUs.",
        "",
        "| command | best s | median s | best CPU s | minus `python -c pass` | target | met |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in results.items():
        if "seconds" not in row:
            lines.append(f"| {name} | {row['error']} | | | | | |")
            continue
        target = row.get("target_seconds")
        met = {True: "yes", False: "NO"}.get(row.get("met"), "-")  # type: ignore[arg-type]
        lines.append(
            f"| {name} | {row['seconds']:.3f} | {row['median_seconds']:.3f} | "
            f"{row['cpu_seconds']:.3f} | {row.get('minus_python_start', 0):.3f} | {'-' if target is None else target} | "
            f"{met} |"
        )
    text = "\n".join(lines) + "\n"
    if not args.quick:
        RESULTS_DIR.mkdir(exist_ok=True)
        (RESULTS_DIR / "cli.json").write_text(json.dumps(record, indent=2) + "\n")
        (RESULTS_DIR / "cli.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
