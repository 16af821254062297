"""Pipelines benchmark: no-op re-runs of a 1,000-task chain and fan-in, first-run overhead per
task, and disdat-luigi's no-op on the same pipelines.

    .venv/bin/python bench/bench_pipelines.py            # 1,000 tasks (a few minutes)
    .venv/bin/python bench/bench_pipelines.py --quick    # 100 tasks, a smoke run

Rows (all in one run, one machine):

- ``chain``: task ``i`` requires task ``i-1`` (1,000 deep); ``fan-in``: one root requires
  1,000 independent leaves. Each task returns a small int (the work is the framework's).
- first run (``assay.api.apply``, in-process threads, ``workers=1``): everything runs; the
  reference is calling the same tasks' ``pipe_run`` directly in dependency order (instances
  made, inputs passed by hand), so ``overhead per task = (apply - direct) / tasks``.
- no-op re-run: everything cached (median of 3). Target < 1 s for 1,000 tasks.
- peer: disdat-luigi 1.0.2 (``disdatluigi.api.apply`` on Luigi's local scheduler) in its own
  venv (``bench/.peers/disdat-luigi``, built by ``peers.py``), the same two pipelines with the
  same task bodies, timed inside its process around ``apply`` (median of 3 no-op runs). The
  peer needs a deeper recursion limit for a 1,000-deep chain (its processing ids recurse per
  upstream task); the script raises it. ``ratio = peer seconds / assay seconds``; target >= 10.

Results: ``bench/results/pipelines.json`` and ``pipelines.md`` (``--quick`` writes
``pipelines.quick.*``, not committed).
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
import textwrap
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402  (bench/ is put on sys.path just above)

TASKS = """
from {base_module} import {base_class}, {int_param}


class Step({base_class}):
    i = {int_param}()

    def pipe_requires(self):
        self.set_bundle_name("step_%d" % self.i)
        if self.i > 0:
            self.add_dependency("prev", Step, {{"i": self.i - 1}})

    def pipe_run(self, prev=None):
        return (prev or 0) + 1


class Leaf({base_class}):
    i = {int_param}()

    def pipe_requires(self):
        self.set_bundle_name("leaf_%d" % self.i)

    def pipe_run(self):
        return self.i


class FanIn({base_class}):
    width = {int_param}()

    def pipe_requires(self):
        self.set_bundle_name("fan_in")
        for i in range(self.width):
            self.add_dependency("leaf_%d" % i, Leaf, {{"i": i}})

    def pipe_run(self, **leaves):
        return sum(leaves.values())
"""

PEER_SCRIPT = """
import json, statistics, sys, time
sys.setrecursionlimit(200000)
import logging
logging.disable(logging.CRITICAL)
from disdat import common
common.DisdatConfig.init()
import disdat.api as api
import disdatluigi.api as dlapi
import peer_tasks as tasks

n = int(sys.argv[1])
api.context("bench")
out = {}
for name, cls, params in (("chain", tasks.Step, {"i": n - 1}), ("fan_in", tasks.FanIn, {"width": n})):
    start = time.perf_counter()
    first = dlapi.apply("bench", cls, params=params)
    first_s = time.perf_counter() - start
    noop = []
    for _ in range(3):
        start = time.perf_counter()
        again = dlapi.apply("bench", cls, params=params)
        noop.append(time.perf_counter() - start)
    assert first["did_work"] and not again["did_work"], (first, again)
    out[name] = {"first_s": first_s, "noop_s": statistics.median(noop), "noop_runs": noop}
print("RESULT " + json.dumps(out))
"""


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def write_tasks(
    folder: Path, module: str, base_module: str, base_class: str, int_param: str
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    source = TASKS.format(base_module=base_module, base_class=base_class, int_param=int_param)
    (folder / f"{module}.py").write_text(textwrap.dedent(source))


def direct_seconds(tasks: Any, n: int) -> dict[str, float]:
    """The reference: the same task bodies called directly, in dependency order."""
    start = time.perf_counter()
    value = None
    for i in range(n):
        value = tasks.Step(i=i).pipe_run(prev=value)
    chain = time.perf_counter() - start
    start = time.perf_counter()
    leaves = {f"leaf_{i}": tasks.Leaf(i=i).pipe_run() for i in range(n)}
    tasks.FanIn(width=n).pipe_run(**leaves)
    fan_in = time.perf_counter() - start
    return {"chain": chain, "fan_in": fan_in}


def measure_assay(work: Path, n: int) -> dict[str, Any]:
    os.environ["ASSAY_HOME"] = str(work / "assay-home")
    os.environ.pop("ASSAY_CATALOG_URL", None)
    write_tasks(work / "ours", "bench_pipeline_tasks", "assay.pipe", "PipeTask", "IntParameter")
    sys.path.insert(0, str(work / "ours"))
    import bench_pipeline_tasks as tasks

    from assay import api

    api.context("bench")
    direct = direct_seconds(tasks, n)
    results: dict[str, Any] = {}
    for name, cls, params in (
        ("chain", tasks.Step, {"i": n - 1}),
        ("fan_in", tasks.FanIn, {"width": n}),
    ):
        load_before = load_average()
        start = time.perf_counter()
        first = api.apply("bench", cls, params=params)
        first_s = time.perf_counter() - start
        noop = []
        for _ in range(3):
            start = time.perf_counter()
            again = api.apply("bench", cls, params=params)
            noop.append(time.perf_counter() - start)
        assert first["did_work"] and not again["did_work"], (first, again)
        overhead_ms = (first_s - direct[name]) / (n + (1 if name == "fan_in" else 0)) * 1000
        results[name] = {
            "first_s": first_s,
            "direct_s": direct[name],
            "overhead_ms_per_task": overhead_ms,
            "noop_s": statistics.median(noop),
            "noop_runs": noop,
            "load_average_before": load_before,
            "load_average_after": load_average(),
        }
    return results


def measure_peer(work: Path, n: int) -> dict[str, Any]:
    peer = peers.PEERS["disdat-luigi"]
    try:
        version = peers.build(peer, peers.default_python())
    except peers.PeerBuildError as error:
        return {"error": f"disdat-luigi did not install: {error}"}
    folder = work / "peer"
    write_tasks(folder, "peer_tasks", "disdatluigi.pipe", "PipeTask", "IntParameter")
    (folder / "peer_tasks.py").write_text(
        "import luigi\nIntParameter = luigi.IntParameter\n"
        + (folder / "peer_tasks.py")
        .read_text()
        .replace(
            "from disdatluigi.pipe import PipeTask, IntParameter",
            "from disdatluigi.pipe import PipeTask",
        )
    )
    (folder / "run_peer.py").write_text(PEER_SCRIPT)
    env = {**os.environ, "HOME": str(folder / "home"), "PYTHONPATH": str(folder)}
    env.pop("ASSAY_HOME", None)
    (folder / "home").mkdir(exist_ok=True)
    completed = subprocess.run(
        [str(peer.python), str(folder / "run_peer.py"), str(n)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return {"version": version, "tasks": n, **json.loads(line[7:])}
    tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
    return {"version": version, "tasks": n, "error": " | ".join(tail)}


def render(result: dict[str, Any]) -> str:
    n = result["tasks"]
    ours = result["assay"]
    peer = result["peer"]
    lines = [
        "# Pipelines benchmark",
        "",
        f"{result['machine']}; Python {result['python']}; load average (1/5/15 min) at start "
        f"{result['load_average_start']}, at end {result['load_average_end']}.",
        "",
        f"| pipeline ({n} tasks) | Assay first run | direct calls | overhead / task | "
        "Assay no-op | disdat-luigi no-op | ratio (peer / Assay) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("chain", "fan_in"):
        row = ours[name]
        peer_row = peer.get(name)
        peer_text = f"{peer_row['noop_s']:.3f} s" if peer_row else "n/a"
        ratio = f"{peer_row['noop_s'] / row['noop_s']:.1f}x" if peer_row else "n/a"
        lines.append(
            f"| {name} | {row['first_s']:.2f} s | {row['direct_s'] * 1000:.2f} ms | "
            f"{row['overhead_ms_per_task']:.2f} ms | {row['noop_s']:.3f} s | {peer_text} | "
            f"{ratio} |"
        )
    lines += ["", "Targets:", ""]
    for target in result["targets"]:
        lines.append(f"- {target['what']}: {target['value']} -> **{target['verdict']}**")
    if "error" in peer:
        lines += ["", f"Peer: {peer['error']}"]
    else:
        lines += [
            "",
            f"Peer: disdat-luigi {peer['version']} first runs: chain "
            f"{peer['chain']['first_s']:.2f} s ({peer['chain']['first_s'] / ours['chain']['first_s']:.1f}x "
            f"Assay's), fan-in {peer['fan_in']['first_s']:.2f} s "
            f"({peer['fan_in']['first_s'] / ours['fan_in']['first_s']:.1f}x Assay's).",
        ]
    return "\n".join(lines) + "\n"


def targets(result: dict[str, Any]) -> list[dict[str, str]]:
    ours, peer = result["assay"], result["peer"]
    found = []
    for name in ("chain", "fan_in"):
        noop = ours[name]["noop_s"]
        found.append(
            {
                "what": f"no-op re-run of the {result['tasks']}-task {name} < 1 s",
                "value": f"{noop:.3f} s",
                "verdict": "met" if noop < 1.0 else "NOT met",
            }
        )
        overhead = ours[name]["overhead_ms_per_task"]
        found.append(
            {
                "what": f"first-run overhead per in-process task ({name}) < 5 ms",
                "value": f"{overhead:.2f} ms",
                "verdict": "met" if overhead < 5.0 else "NOT met",
            }
        )
        if name in peer:
            ratio = peer[name]["noop_s"] / noop
            found.append(
                {
                    "what": f"no-op >= 10x faster than disdat-luigi ({name})",
                    "value": f"{ratio:.1f}x",
                    "verdict": "met" if ratio >= 10 else "NOT met",
                }
            )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--render", type=Path, default=None, help="only re-render a saved results JSON as Markdown"
    )
    parser.add_argument("--quick", action="store_true", help="100 tasks, a smoke run")
    parser.add_argument("--tasks", type=int, default=None, help="tasks per pipeline")
    args = parser.parse_args()
    if args.render is not None:
        saved = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(render(saved))
        return 0
    n = args.tasks or (100 if args.quick else 1000)
    start_load = load_average()
    with tempfile.TemporaryDirectory(prefix="assay-bench-pipelines-") as scratch:
        work = Path(scratch)
        ours = measure_assay(work, n)
        peer = measure_peer(work, n)
    result: dict[str, Any] = {
        "benchmark": "pipelines",
        "tasks": n,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "load_average_start": start_load,
        "load_average_end": load_average(),
        "assay": ours,
        "peer": peer,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    result["targets"] = targets(result)
    suffix = ".quick" if args.quick else ""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"pipelines{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = render(result)
    (RESULTS / f"pipelines{suffix}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
