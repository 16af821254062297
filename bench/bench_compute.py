"""Compute-to-data benchmark: what a compute job costs on top of running its algorithm.

    .venv/bin/python bench/bench_compute.py            # 20 jobs per row
    .venv/bin/python bench/bench_compute.py --quick    # 5 jobs per row, a smoke run

Rows (one run, one machine, a fresh ASSAY_HOME on SQLite):

- reference: ``subprocess.run`` of the Ocean-style example algorithm on a prepared folder
  (inputs copied in, the same environment variables), back to back;
- ``Compute().start`` + ``wait`` of the same algorithm as a raw algorithm on a download-access
  dataset in an environment without a sandbox: consumability check, job id, catalog rows,
  staging the dataset, the executor's layout, the process, publishing outputs and logs as one
  bundle;
- the same on a compute-access dataset in a bubblewrap sandbox (``network: false``).

Each job has different custom data, so none is the same work as another (no job is reused).
``ratio = job seconds / reference seconds`` (median). Results: ``bench/results/compute.json``
and ``compute.md``, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
SCRIPT = ROOT / "examples" / "compute-to-data" / "ocean_style_algorithm.py"
ENVIRONMENTS = """\
environments:
  - id: open
    isolation: none
    max_jobs: 1
  - id: box
    isolation: sandbox
    network: false
    max_jobs: 1
"""


def _reference(count: int, data: Path, scratch: Path) -> list[float]:
    times = []
    for n in range(count):
        work = scratch / f"ref-{n}"
        shutil.copytree(data, work / "inputs" / "notes")
        (work / "inputs" / "algoCustomData.json").write_text(json.dumps({"word": f"w{n}"}))
        (work / "outputs").mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "INPUTS": str(work / "inputs"),
            "OUTPUTS": str(work / "outputs"),
            "DIDS": json.dumps(["notes"]),
        }
        started = time.perf_counter()
        subprocess.run([sys.executable, str(SCRIPT)], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def _jobs(count: int, environment: str, dataset: str, consumer: str) -> list[float]:
    from assay.compute import Compute

    compute = Compute()
    meta = {
        "rawcode": SCRIPT.read_text(),
        "language": "python",
        "container": {"entrypoint": "python $ALGO"},
    }
    times = []
    for n in range(count):
        started = time.perf_counter()
        job_id = compute.start(
            consumer,
            dataset,
            environment,
            algorithm_meta=meta,
            algorithm_algocustomdata={"word": f"w{n}"},
        )
        status = compute.wait(job_id, consumer, timeout=300)
        times.append(time.perf_counter() - started)
        if status["state"] != "FINISHED":
            raise SystemExit(f"job {job_id} ended {status['state']}: {status['error']}")
    return times


def _stats(times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 1),
        "n": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = 5 if args.quick else 20
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="assay-bench-compute-") as scratch_name:
        scratch = Path(scratch_name)
        home = scratch / "home"
        home.mkdir()
        (home / "environments.yaml").write_text(ENVIRONMENTS)
        os.environ["ASSAY_HOME"] = str(home)
        os.environ.pop("ASSAY_CATALOG_URL", None)
        data = scratch / "data"
        data.mkdir()
        for n in range(10):
            (data / f"part-{n}.txt").write_text("wind\ncalm\n" * 100)

        from assay import api
        from assay.computejobs.lifecycle import close_executors
        from assay.jobs.policies import publish

        api.context("open-data")
        api.add("open-data", "notes", str(data))
        api.context("hospital")
        api.add("hospital", "notes", str(data))
        publish("hospital", "notes", "compute", allow_raw_algorithm=True)

        reference = _reference(count, data, scratch)
        open_job = _jobs(count, "open", "assay://open-data/notes", "bench")
        sandboxed = _jobs(count, "box", "assay://hospital/notes", "bench")
        close_executors()
    rows = {
        "reference: subprocess.run of the algorithm": _stats(reference),
        "compute job, download-access dataset, no sandbox": _stats(open_job),
        "compute job, compute-access dataset, bubblewrap sandbox": _stats(sandboxed),
    }
    base = statistics.median(reference)
    ratios = {
        "job_no_sandbox_vs_subprocess": round(statistics.median(open_job) / base, 2),
        "job_sandbox_vs_subprocess": round(statistics.median(sandboxed) / base, 2),
    }
    load_after = os.getloadavg()[0]
    result = {
        "benchmark": "compute",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "rows": rows,
        "ratios": ratios,
        "load_average_1min": {"before": round(load_before, 2), "after": round(load_after, 2)},
        "dataset": "10 files, 20 kB",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compute.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "| one compute job, start to results (10-file dataset) | median ms | p90 ms | n |",
        "|---|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['median_ms']} | {row['p90_ms']} | {row['n']} |")
    lines += [
        "",
        "Ratios (job seconds / subprocess.run seconds, median): "
        + ", ".join(f"{k} {v}" for k, v in ratios.items()),
        "",
        f"Load average (1 min) before / after: {load_before:.2f} / {load_after:.2f} on "
        f"{os.cpu_count()} CPUs (the machine is shared: figures move with the load).",
    ]
    (RESULTS / "compute.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
