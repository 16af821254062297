"""Services benchmark: question round trips on the local backend, ask_multiple throughput,
10,000-file manifest validation, and Octue's own Runner.run on the same trivial app.

    .venv/bin/python bench/bench_services.py            # 1,000 questions (~2-4 min)
    .venv/bin/python bench/bench_services.py --quick    # 100 questions, a smoke run

Rows (all in one run, one machine):

- ``Child.ask`` round trip: a values-only app (twine with input and output schemas), asked
  sequentially, back to back; each question records its row and events in a fresh SQLite
  catalog and validates outputs. With a fresh worker process per question (``python -m
  assay.jobs.worker assay.services.answer:answer``, the default), measured as the environment
  is installed (the bootstrap byte-compiles the venv and ``src``; ``bytecode_present`` in the results says whether
  it did) and with no bytecode cache at all (an empty private ``PYTHONPYCACHEPREFIX`` and
  ``PYTHONDONTWRITEBYTECODE=1``: every worker compiles every module it imports, stdlib included).
  Where a fresh worker's time goes: start to ``delivery`` (interpreter start and the worker's
  first imports), ``delivery`` to ``result`` (importing the runner and jsonschema, loading the
  app and twine, answering), ``result`` to ``ask`` returning (the catalog write). And with
  reusable pool workers (``ASSAY_WORKER_POOL=1``: the app loaded once, one worker answering
  every question). Catalog write transactions per question are counted for both.
- ``ask_multiple``: questions per second with 8 questions in flight on this 2-core machine,
  fresh workers and a pool of 8.
- ``Runner.run`` in this process (no subprocess, no catalog rows): the same scope as Octue's
  ``Runner.run``, which is the reference: ``ratio = octue_seconds / assay_seconds``.
- Validation of a 10,000-file input manifest against a ``file_tags_template``: our
  ``Twine.validate_manifest`` (every file checked), and Octue's per-file loop
  (``jsonschema.validate`` per file, as ``octue.twined.runner`` does) on the same tags in
  Octue's venv.

Results: ``bench/results/services.json`` and ``services.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
sys.path.insert(0, str(BENCH))

TWINE: dict[str, Any] = {
    "input_values_schema": {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0}},
        "required": ["n"],
    },
    "output_values_schema": {
        "type": "object",
        "properties": {"double": {"type": "integer"}},
        "required": ["double"],
    },
}
APP = (
    'def run(analysis):\n    analysis.output_values = {"double": analysis.input_values["n"] * 2}\n'
)
TEMPLATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sequence": {"type": "integer", "minimum": 0},
        "height": {"type": "number"},
        "manufacturer": {"type": "string"},
        "is_recycled": {"type": "boolean"},
    },
    "required": ["sequence", "height", "manufacturer"],
}
FILES = 10_000


def stats_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p99_ms": round(p99 * 1000, 3),
        "mean_ms": round(statistics.fmean(samples) * 1000, 3),
        "min_ms": round(ordered[0] * 1000, 3),
    }


def write_service(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(APP)
    (folder / "twine.json").write_text(json.dumps(TWINE))
    (folder / "assay.yaml").write_text(
        "services:\n  - name: trivial\n    namespace: bench\n    tag: 1.0.0\n"
    )


def bytecode_present() -> dict[str, bool]:
    """Whether the worker's own module and a dependency have bytecode beside their source."""
    import importlib.util

    import jsonschema

    import assay.jobs.worker as worker

    return {
        name: os.path.exists(importlib.util.cache_from_source(module.__file__ or ""))
        for name, module in (("assay", worker), ("site-packages", jsonschema))
    }


class _Transactions:
    """Counts catalog write transactions (``Workspace.write``) while it is entered."""

    def __enter__(self) -> _Transactions:
        from assay.bundles.workspace import Workspace

        self.count = 0
        self._original = Workspace.write
        original = self._original

        def counted(workspace: Any) -> Any:
            self.count += 1
            return original(workspace)

        Workspace.write = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from assay.bundles.workspace import Workspace

        Workspace.write = self._original  # type: ignore[method-assign]


def round_trips(folder: Path, count: int) -> dict[str, Any]:
    """``count`` questions back to back: timings, transactions and worker pids."""
    from assay.services import Child, get_question

    child = Child("bench/trivial:1.0.0", backend={"name": "local", "path": str(folder)})
    child.ask(input_values={"n": 0}, timeout=120)  # warm: catalog created, twine loaded
    samples = []
    pids = set()
    with _Transactions() as transactions:
        for n in range(count):
            started = time.perf_counter()
            answer, uuid = child.ask(input_values={"n": n}, timeout=120, record_events=False)
            samples.append(time.perf_counter() - started)
            assert answer["output_values"] == {"double": 2 * n}
            if n < 20:
                pids.add(get_question(uuid).details["worker_pid"])
    return {
        **stats_ms(samples),
        "catalog_transactions_per_question": round(transactions.count / count, 2),
        "worker_processes_in_first_20": len(pids),
    }


def fresh_worker_split(folder: Path, count: int) -> dict[str, Any]:
    """Where a fresh worker's round trip goes, from the events' times (median ms)."""
    from assay.services import Child

    child = Child("bench/trivial:1.0.0", backend={"name": "local", "path": str(folder)})
    parts: dict[str, list[float]] = {
        "start_to_delivery": [],
        "delivery_to_result": [],
        "result_to_return": [],
    }
    for n in range(count):
        started = time.time()
        child.ask(input_values={"n": n}, timeout=120)
        ended = time.time()
        at = {event["kind"]: event["at"] for event in child.received_events or []}
        parts["start_to_delivery"].append(at["delivery"] - started)
        parts["delivery_to_result"].append(at["result"] - at["delivery"])
        parts["result_to_return"].append(ended - at["result"])
    return {key: round(statistics.median(v) * 1000, 2) for key, v in parts.items()}


def throughput(folder: Path, count: int, workers: int) -> dict[str, Any]:
    from assay.services import Child

    child = Child("bench/trivial:1.0.0", backend={"name": "local", "path": str(folder)})
    started = time.perf_counter()
    answers = child.ask_multiple(
        *({"input_values": {"n": n}, "timeout": 300, "record_events": False} for n in range(count)),
        max_workers=workers,
    )
    seconds = time.perf_counter() - started
    assert [a["output_values"]["double"] for a, _ in answers] == [2 * n for n in range(count)]
    return {
        "questions": count,
        "workers": workers,
        "seconds": round(seconds, 3),
        "questions_per_second": round(count / seconds, 1),
    }


def in_process(folder: Path, count: int) -> list[float]:
    from assay.services import Runner

    runner = Runner.from_config(folder)
    samples = []
    for n in range(count):
        started = time.perf_counter()
        analysis = runner.run(input_values={"n": n})
        samples.append(time.perf_counter() - started)
        assert analysis.output_values == {"double": 2 * n}
    return samples


def file_tags(count: int) -> list[dict[str, Any]]:
    return [
        {
            "sequence": index,
            "height": 80.0 + index % 40,
            "manufacturer": f"maker-{index % 7}",
            "is_recycled": index % 2 == 0,
        }
        for index in range(count)
    ]


def validation(tags: list[dict[str, Any]]) -> dict[str, Any]:
    from assay.resources import Datafile, Dataset, Manifest
    from assay.services import Twine

    twine = Twine({"input_manifest": {"datasets": {"raw": {"file_tags_template": TEMPLATE}}}})
    serialised = {
        "id": "bench",
        "datasets": {
            "raw": {
                "name": "raw",
                "path": "/data/raw",
                "files": [
                    {"path": f"/data/raw/f{index:05d}.csv", "tags": item}
                    for index, item in enumerate(tags)
                ],
            }
        },
    }
    load, check = [], []
    for _ in range(5):
        started = time.perf_counter()
        manifest = Manifest.deserialise(serialised)
        load.append(time.perf_counter() - started)
        started = time.perf_counter()
        twine.validate_manifest("input_manifest", manifest)
        check.append(time.perf_counter() - started)
    files = [Datafile(path=f"/data/raw/f{i:05d}.csv", tags=t) for i, t in enumerate(tags)]
    assert len(Dataset(files=files, path="/data/raw")) == len(tags)
    return {
        "files": len(tags),
        "validate_seconds": {
            "median": round(statistics.median(check), 4),
            "min": round(min(check), 4),
        },
        "load_manifest_json_seconds": {
            "median": round(statistics.median(load), 4),
            "min": round(min(load), 4),
        },
    }


def octue(runs: int, tags: list[dict[str, Any]], work: Path) -> dict[str, Any]:
    import peers

    peer = peers.PEERS["octue"]
    try:
        version = peers.build(peer, peers.default_python())
    except peers.PeerBuildError as error:
        return {"error": str(error)}
    fixture = work / "octue-fixture.json"
    fixture.write_text(json.dumps({"twine": TWINE, "template": TEMPLATE, "tags": tags}))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ASSAY_")}
    env["HOME"] = str(work)
    completed = subprocess.run(
        [
            str(peer.python),
            str(BENCH / "servicesbench" / "octue_timer.py"),
            str(runs),
            str(fixture),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        check=False,
    )
    if completed.returncode != 0:
        return {"error": (completed.stderr or completed.stdout).strip()[-3000:], "version": version}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100 questions")
    args = parser.parse_args()
    count = 100 if args.quick else args.questions
    cold_count = min(count, 100)
    for key in [k for k in os.environ if k.startswith("ASSAY_")]:
        del os.environ[key]
    from ingestbench.machine import load_average

    report: dict[str, Any] = {
        "benchmark": "services",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_average(),
        },
    }
    with tempfile.TemporaryDirectory(prefix="assay-bench-services-") as tmp:
        work = Path(tmp)
        folder = work / "trivial"
        write_service(folder)
        os.environ["ASSAY_HOME"] = str(work / "home")
        tags = file_tags(FILES)
        print("validation of a 10,000-file manifest ...", flush=True)
        report["validation"] = validation(tags)
        print("Runner.run in process ...", flush=True)
        report["runner_in_process"] = stats_ms(in_process(folder, count))
        report["bytecode_present"] = bytecode_present()
        print(f"{count} questions, fresh worker each ...", flush=True)
        report["round_trip"] = round_trips(folder, count)
        report["fresh_worker_split_ms"] = fresh_worker_split(folder, cold_count)
        print("ask_multiple ...", flush=True)
        report["ask_multiple"] = throughput(folder, min(count, 200), 8)
        print(f"{count} questions, reusable pool worker ...", flush=True)
        from assay.services.local import close_pool

        os.environ["ASSAY_WORKER_POOL"] = "1"
        report["round_trip_warm_pool"] = round_trips(folder, count)
        os.environ["ASSAY_WORKER_POOL"] = "8"
        close_pool()
        report["ask_multiple_warm_pool"] = throughput(folder, min(count, 200), 8)
        os.environ["ASSAY_WORKER_POOL"] = "0"
        close_pool()
        empty = work / "no-pycache"
        empty.mkdir()
        os.environ["PYTHONPYCACHEPREFIX"] = str(empty)
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        print(f"{cold_count} questions, no bytecode cache ...", flush=True)
        report["round_trip_no_bytecode_cache"] = round_trips(folder, cold_count)
        del os.environ["PYTHONPYCACHEPREFIX"]
        print("Octue Runner.run ...", flush=True)
        report["octue"] = octue(count, tags, work)
    report["machine"]["load_average_after"] = load_average()
    octue_result = report["octue"]
    if "run_seconds" in octue_result:
        octue_stats = stats_ms(octue_result["run_seconds"])
        report["octue_runner_run"] = octue_stats
        report["ratios"] = {
            "runner_in_process_vs_octue_runner_run": round(
                octue_stats["median_ms"] / report["runner_in_process"]["median_ms"], 2
            ),
            "child_ask_round_trip_vs_octue_runner_run": round(
                octue_stats["median_ms"] / report["round_trip"]["median_ms"], 3
            ),
            "validation_vs_octue_file_tag_check": round(
                statistics.median(octue_result["file_tag_check_seconds"])
                / report["validation"]["validate_seconds"]["median"],
                1,
            ),
        }
    report["targets"] = [
        {
            "target": "local round trip median < 50 ms including subprocess start",
            "value_ms": report["round_trip"]["median_ms"],
            "met": report["round_trip"]["median_ms"] < 50,
        },
        {
            "target": "local round trip median < 5 ms with a warm worker pool",
            "value_ms": report["round_trip_warm_pool"]["median_ms"],
            "met": report["round_trip_warm_pool"]["median_ms"] < 5,
        },
        {
            "target": "10k-file manifest validation < 1 s",
            "value_s": report["validation"]["validate_seconds"]["median"],
            "met": report["validation"]["validate_seconds"]["median"] < 1,
        },
    ]
    RESULTS.mkdir(exist_ok=True)
    name = "services.quick" if args.quick else "services"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (RESULTS / f"{name}.md").write_text(table + "\n")
    print(table)


def markdown(report: dict[str, Any]) -> str:
    def row(label: str, figures: dict[str, Any] | None) -> str:
        if not figures:
            return f"| {label} | not available | | |"
        return f"| {label} | {figures['median_ms']} | {figures['p99_ms']} | {figures['n']:,} |"

    ratios = report.get("ratios", {})
    octue_result = report.get("octue", {})
    lines = [
        "| question round trip (trivial values-only app) | median ms | p99 ms | n |",
        "|---|---:|---:|---:|",
        row(
            "Child.ask, local backend, fresh worker per question (default), bytecode as installed",
            report["round_trip"],
        ),
        row(
            "Child.ask, local backend, reusable pool worker (ASSAY_WORKER_POOL=1, back to back)",
            report["round_trip_warm_pool"],
        ),
        row(
            "Child.ask, local backend, fresh worker, no bytecode cache at all",
            report["round_trip_no_bytecode_cache"],
        ),
        row("Runner.run in process (Assay)", report["runner_in_process"]),
        row(
            f"Runner.run in process (Octue {octue_result.get('octue_version', '?')})",
            report.get("octue_runner_run"),
        ),
        "",
        f"ask_multiple: {report['ask_multiple']['questions_per_second']} questions/s with a "
        "fresh worker each "
        f"({report['ask_multiple']['questions']} questions, "
        f"{report['ask_multiple']['workers']} in flight, {report['machine']['cpus']} CPUs); "
        f"with a pool of 8: {report['ask_multiple_warm_pool']['questions_per_second']} "
        "questions/s.",
        "",
        "Where a fresh worker's round trip goes (median ms): "
        + ", ".join(f"{k} {v}" for k, v in report["fresh_worker_split_ms"].items())
        + ". Catalog write transactions per question: "
        f"{report['round_trip']['catalog_transactions_per_question']} (fresh), "
        f"{report['round_trip_warm_pool']['catalog_transactions_per_question']} (pool); "
        "worker processes for the first 20 questions: "
        f"{report['round_trip']['worker_processes_in_first_20']} (fresh), "
        f"{report['round_trip_warm_pool']['worker_processes_in_first_20']} (pool).",
        "",
        f"10,000-file manifest, file_tags_template checked on every file: "
        f"{report['validation']['validate_seconds']['median']} s median "
        f"(loading the manifest from its JSON form: "
        f"{report['validation']['load_manifest_json_seconds']['median']} s); Octue's per-file "
        f"check on the same tags: "
        + (
            f"{round(statistics.median(octue_result['file_tag_check_seconds']), 3)} s"
            if "file_tag_check_seconds" in octue_result
            else f"not available ({octue_result.get('error', '?')[:200]})"
        )
        + ".",
        "",
        "Ratios (Octue seconds / Assay seconds, above 1 = Assay faster): "
        + (", ".join(f"{k} {v}" for k, v in ratios.items()) or "not available"),
        "",
        "Targets: "
        + "; ".join(
            f"{t['target']}: {'met' if t['met'] else 'NOT met'}" for t in report["targets"]
        ),
        "",
        "A fresh worker process per question unless ASSAY_WORKER_POOL > 0: then a worker "
        "answers question after question (app loaded once; killed after any failure) and up "
        "to that many idle workers are kept per service.",
        "",
        f"Load average (1 min) before / after: {report['machine']['load_average_before'][0]} / "
        f"{report['machine']['load_average_after'][0]} on {report['machine']['cpus']} CPUs.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
