"""Job layer benchmark: trivial jobs through the local executor vs bare ``subprocess.run``.

Measured in one run, each against its reference from the same run:

* N trivial jobs (an Ocean-style script that writes one output file) through
  ``LocalExecutor``: per-job time with ``max_jobs=1`` as a ratio to a bare ``subprocess.run`` of
  the same script (target <= 3x), unisolated and under the bubblewrap sandbox; and throughput
  (jobs/s) with ``max_jobs`` = CPUs vs the same bare runs on as many threads;
* ``stop`` (from the catalog's stop flag) to the job's process group gone (target < 1 s);
* restart recovery: 100 running jobs whose supervisor was killed with SIGKILL, then the next
  scheduling process's ``reconcile`` (target < 2 s), checking no process is left;
* catalog rows and bytes per 1,000 jobs (SQLite file growth).

    .venv/bin/python bench/bench_jobs.py [--n 1000] [--stop-trials 10] [--orphans 100]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from assay.bundles.workspace import close_workspaces, open_workspace
from assay.catalog.schema import job_events, jobs
from assay.jobs import process, sandbox, store
from assay.jobs.environments import Environment
from assay.jobs.executors.local import LocalExecutor
from assay.jobs.ids import job_id
from assay.jobs.reconcile import reconcile

RESULTS = Path(__file__).parent / "results"
PYTHON = sys.executable
TRIVIAL = """
import os
with open(os.path.join(os.environ["OUTPUTS"], "result.txt"), "w") as handle:
    handle.write("ok")
"""


def _fresh_home(root: Path, name: str) -> Path:
    home = root / name
    os.environ["ASSAY_HOME"] = str(home)
    os.environ.pop("ASSAY_CATALOG_URL", None)
    close_workspaces()
    open_workspace()
    return home


def _bare(script: Path, workdir: Path) -> None:
    outputs = workdir / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", ""), "OUTPUTS": str(outputs)}
    subprocess.run([PYTHON, str(script)], env=env, check=True, cwd=workdir)


def _bare_batch(script: Path, root: Path, n: int, threads: int) -> float:
    start = time.perf_counter()
    if threads == 1:
        for i in range(n):
            _bare(script, root / f"b{i}")
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: _bare(script, root / f"b{i}"), range(n)))
    return time.perf_counter() - start


def _executor_batch(
    script: Path, root: Path, n: int, environment: Environment, label: str
) -> float:
    """Create, submit and wait for ``n`` jobs; seconds from the first create to the last end."""
    start = time.perf_counter()
    with LocalExecutor(environment) as executor:
        ids = []
        for i in range(n):
            jid = job_id("bench", label, i, time.time_ns())
            store.create_job("compute", jid, spec={"i": i}, environment=environment.id)
            executor.submit(jid, [PYTHON, str(script)], workdir=root / f"{label}-{i}")
            ids.append(jid)
        records = [executor.wait(jid) for jid in ids]
    elapsed = time.perf_counter() - start
    bad = [r for r in records if r.state != "FINISHED"]
    if bad:
        raise SystemExit(f"{len(bad)} jobs did not finish: {bad[0].state} {bad[0].error}")
    return elapsed


def _catalog_size(home: Path) -> tuple[int, dict[str, int]]:
    workspace = open_workspace()
    with workspace.write() as conn:
        counts = {
            "jobs": conn.execute(select(func.count()).select_from(jobs)).scalar_one(),
            "job_events": conn.execute(select(func.count()).select_from(job_events)).scalar_one(),
        }
    with workspace.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        conn.commit()
    return (home / "catalog.db").stat().st_size, counts


def bench_throughput(root: Path, n: int, use_sandbox: bool) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    script = root / "trivial.py"
    script.write_text(textwrap.dedent(TRIVIAL))
    cpus = os.cpu_count() or 1
    isolation = "sandbox" if use_sandbox else "none"
    label = f"sandbox-{use_sandbox}"
    home = _fresh_home(root, f"home-{label}")
    size_before, _ = _catalog_size(home)
    bare_seq = _bare_batch(script, root / f"bare-seq-{label}", n, 1)
    seq = _executor_batch(
        script,
        root / "work",
        n,
        Environment(id="local", max_jobs=1, isolation=isolation),
        f"{label}-seq",
    )
    size_after, counts = _catalog_size(home)
    bare_par = _bare_batch(script, root / f"bare-par-{label}", n, cpus)
    par = _executor_batch(
        script,
        root / "work",
        n,
        Environment(id="local", max_jobs=cpus, isolation=isolation),
        f"{label}-par",
    )
    per_job_bare, per_job = bare_seq / n * 1000, seq / n * 1000
    return {
        "n": n,
        "isolation": isolation,
        "bare_per_job_ms": round(per_job_bare, 2),
        "executor_per_job_ms": round(per_job, 2),
        "overhead_per_job_ms": round(per_job - per_job_bare, 2),
        "per_job_ratio_to_bare": round(per_job / per_job_bare, 2),
        "bare_jobs_per_s_parallel": round(n / bare_par, 1),
        "executor_jobs_per_s_parallel": round(n / par, 1),
        "parallel_ratio_bare_over_executor": round((n / bare_par) / (n / par), 2),
        "parallel_threads": cpus,
        "catalog_rows_per_1000_jobs": {k: round(v / n * 1000) for k, v in counts.items()},
        "catalog_bytes_per_1000_jobs": round((size_after - size_before) / n * 1000),
    }


def bench_stop(root: Path, trials: int) -> dict[str, Any]:
    _fresh_home(root, "home-stop")
    marker_dir = root / "stop-markers"
    marker_dir.mkdir()
    script = root / "sleeper.py"
    script.write_text(
        "import os, pathlib, sys, time\n"
        "pathlib.Path(sys.argv[1], os.environ['ASSAY_JOB_ID']).touch()\n"
        "time.sleep(600)\n"
    )
    times = []
    with LocalExecutor(Environment(id="local", max_jobs=1)) as executor:
        for i in range(trials):
            jid = job_id("bench-stop", i, time.time_ns())
            store.create_job("compute", jid, spec={})
            executor.submit(jid, [PYTHON, str(script), str(marker_dir)], workdir=root / f"stop-{i}")
            _wait(lambda jid=jid: (marker_dir / jid).exists())
            pgid = store.get_job(jid).pgid
            assert pgid is not None
            start = time.perf_counter()
            store.request_stop(jid)
            _wait(lambda pgid=pgid: not process.group_members(pgid), interval=0.001)
            times.append(time.perf_counter() - start)
            if executor.wait(jid, 30).state != "STOPPED":
                raise SystemExit("a stopped job did not end STOPPED")
    return {
        "trials": trials,
        "stop_to_gone_median_s": round(statistics.median(times), 3),
        "stop_to_gone_max_s": round(max(times), 3),
    }


SUPERVISOR = """
import sys, time
from pathlib import Path
from assay.jobs import store
from assay.jobs.environments import Environment
from assay.jobs.executors.local import LocalExecutor
from assay.jobs.ids import job_id
n, root = int(sys.argv[1]), Path(sys.argv[2])
executor = LocalExecutor(Environment(id="local", max_jobs=n))
ids = []
for i in range(n):
    jid = job_id("bench-orphan", i, time.time_ns())
    store.create_job("compute", jid, spec={})
    executor.submit(jid, ["sleep", "600"], workdir=root / f"orphan-{i}")
    ids.append(jid)
while any(store.get_job(j).state != "RUNNING" for j in ids):
    time.sleep(0.05)
print("running", flush=True)
time.sleep(600)
"""


def bench_recovery(root: Path, orphans: int) -> dict[str, Any]:
    _fresh_home(root, "home-recovery")
    supervisor = subprocess.Popen(
        [PYTHON, "-c", SUPERVISOR, str(orphans), str(root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert supervisor.stdout is not None
    if supervisor.stdout.readline().strip() != "running":
        raise SystemExit("the supervisor did not start its jobs")
    pgids = [r.pgid for r in store.list_jobs(state="RUNNING", limit=None)]
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait()
    start = time.perf_counter()
    changed = reconcile()
    elapsed = time.perf_counter() - start
    left = [p for p in pgids if p is not None and process.group_members(p)]
    return {
        "orphaned_jobs": orphans,
        "reconciled": len(changed),
        "recovery_s": round(elapsed, 3),
        "processes_left": len(left),
        "states": sorted({r.state for r in changed}),
    }


def _wait(condition: Callable[[], bool], timeout: float = 60, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out in the benchmark")
        time.sleep(interval)


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Job layer benchmark",
        "",
        f"Ran {result['args']} on {result['machine']['cpus']} CPUs; load average (1 min) before / "
        f"after: {result['load_before']} / {result['load_after']}.",
        "",
        "| trivial jobs | isolation | per job (bare subprocess.run) | per job (executor, max_jobs=1) | ratio | overhead | jobs/s bare ({t} threads) | jobs/s executor (max_jobs={t}) |".format(
            t=result["throughput"][0]["parallel_threads"]
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["throughput"]:
        lines.append(
            f"| {row['n']} | {row['isolation']} | {row['bare_per_job_ms']} ms | "
            f"{row['executor_per_job_ms']} ms | {row['per_job_ratio_to_bare']}x | "
            f"{row['overhead_per_job_ms']} ms | {row['bare_jobs_per_s_parallel']} | "
            f"{row['executor_jobs_per_s_parallel']} |"
        )
    stop, recovery = result["stop"], result["recovery"]
    first = result["throughput"][0]
    lines += [
        "",
        f"Stop to process group gone: median {stop['stop_to_gone_median_s']} s, max "
        f"{stop['stop_to_gone_max_s']} s over {stop['trials']} trials (target < 1 s).",
        "",
        f"Restart recovery: {recovery['reconciled']} of {recovery['orphaned_jobs']} orphaned running "
        f"jobs reconciled in {recovery['recovery_s']} s (target < 2 s); processes left: "
        f"{recovery['processes_left']}; states: {', '.join(recovery['states'])}.",
        "",
        f"Catalog per 1,000 jobs (no log lines): rows {first['catalog_rows_per_1000_jobs']}, "
        f"{first['catalog_bytes_per_1000_jobs'] / 1e6:.2f} MB of SQLite file.",
        "",
        "Targets: "
        + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in result["targets"].items()),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="trivial jobs per mode")
    parser.add_argument("--stop-trials", type=int, default=10)
    parser.add_argument("--orphans", type=int, default=100)
    parser.add_argument("--no-sandbox", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="assay-bench-jobs-") as tmp:
        root = Path(tmp)
        throughput = [bench_throughput(root / "plain", args.n, False)]
        if not args.no_sandbox and sandbox.available():
            throughput.append(bench_throughput(root / "sandboxed", args.n, True))
        stop = bench_stop(root, args.stop_trials)
        recovery = bench_recovery(root, args.orphans)
        close_workspaces()
    result = {
        "args": f"--n {args.n} --stop-trials {args.stop_trials} --orphans {args.orphans}",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "throughput": throughput,
        "stop": stop,
        "recovery": recovery,
    }
    result["targets"] = {
        f"per-job ratio <= 3x ({row['isolation']})": row["per_job_ratio_to_bare"] <= 3
        for row in throughput
    } | {
        "stop to gone < 1 s": stop["stop_to_gone_max_s"] < 1,
        "recovery of orphans < 2 s": recovery["recovery_s"] < 2 and recovery["processes_left"] == 0,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "jobs.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "jobs.md").write_text(_markdown(result))
    print(_markdown(result))


if __name__ == "__main__":
    main()
