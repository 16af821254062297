"""Questions on the job layer vs the code before the move, and the fork server, in one run.

    .venv/bin/python bench/bench_questions.py            # 3 rounds: 40 fresh, 70 fork, 300 pool
    .venv/bin/python bench/bench_questions.py --quick    # 1 round: 10 fresh, 20 fork, 50 pool

The code before the move (``--base``, default the merge base with ``main``) is extracted with
``git archive`` into a temp folder and run with the same interpreter and virtualenv, its
``src`` first on ``PYTHONPATH`` (so the asker and its workers import the old ``assay``). Each
side runs in its own process and its own fresh ``ASSAY_HOME`` (SQLite). Rounds alternate old
and new, so load on this shared machine hits both alike. Measured per side, as
``bench_services.py`` does: the ``Child.ask`` round trip of a trivial values-only app with a
fresh interpreter spawned per question (``ASSAY_FORK_SERVER=0``) and with one reusable pool
worker (``ASSAY_WORKER_POOL=1``), and the catalog write transactions per question.
``ratio = new / old`` (below 1.10: within the 10% allowed). The new side also measures a fresh
process per question forked by the fork server (the default; ``assay.jobs.forkserver``), against
its own spawn and pool figures of the same rounds (targets: median < 50 ms, p99 < 100 ms).
Results: ``bench/results/questions.json`` and ``questions.md``.
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

SIDE = r"""
import json, os, sys, time
from pathlib import Path
folder, fresh, fork, pool = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
from assay.bundles.workspace import Workspace
from assay.services import Child
import assay.services
count = {"writes": 0}
original = Workspace.write
def counted(workspace):
    count["writes"] += 1
    return original(workspace)
Workspace.write = counted
child = Child("bench/trivial:1.0.0", backend={"name": "local", "path": str(folder)})
def run(n_questions):
    child.ask(input_values={"n": 0}, timeout=120)  # warm: catalog, twine, pool worker
    count["writes"] = 0
    samples = []
    for n in range(n_questions):
        started = time.perf_counter()
        answer, _ = child.ask(input_values={"n": n}, timeout=120, record_events=False)
        samples.append(time.perf_counter() - started)
        assert answer["output_values"] == {"double": 2 * n}
    return samples, count["writes"] / n_questions
os.environ["ASSAY_FORK_SERVER"] = "0"  # a fresh interpreter per question (old code: ignored)
fresh_samples, fresh_writes = run(fresh)
fork_samples, fork_writes = [], 0.0
if fork:
    os.environ["ASSAY_FORK_SERVER"] = "1"  # the first (warm) question starts the server
    fork_samples, fork_writes = run(fork)
os.environ["ASSAY_WORKER_POOL"] = "1"
pool_samples, pool_writes = run(pool)
from assay.services.local import close_pool
close_pool()
print(json.dumps({
    "code": assay.services.__file__,
    "fresh": fresh_samples, "fresh_writes": fresh_writes,
    "fork": fork_samples, "fork_writes": fork_writes,
    "pool": pool_samples, "pool_writes": pool_writes,
}))
"""


def stats_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p99_ms": round(p99 * 1000, 3),
        "mean_ms": round(statistics.fmean(samples) * 1000, 3),
    }


def _old_source(base: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", base, "src/assay"], check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    # Byte-compile it as the bootstrap does for ours, so both sides start workers alike.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(into / "src")], check=True)
    return into / "src"


def _side(
    src: Path | None, folder: Path, home: Path, fresh: int, fork: int, pool: int
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env["ASSAY_HOME"] = str(home)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    done = subprocess.run(
        [sys.executable, "-c", SIDE, str(folder), str(fresh), str(fork), str(pool)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench side failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fresh", type=int, default=40)
    parser.add_argument("--fork", type=int, default=70)
    parser.add_argument("--pool", type=int, default=300)
    parser.add_argument("--base", default="")
    args = parser.parse_args()
    rounds, fresh, fork, pool = (
        (1, 10, 20, 50) if args.quick else (args.rounds, args.fresh, args.fork, args.pool)
    )
    base = (
        args.base
        or subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    from bench_services import write_service
    from ingestbench.machine import load_average

    report: dict[str, Any] = {
        "benchmark": "questions",
        "base": base,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_average(),
        },
    }
    samples: dict[str, dict[str, list[float]]] = {
        side: {
            key: []
            for key in ("fresh", "fork", "pool", "fresh_writes", "fork_writes", "pool_writes")
        }
        for side in ("old", "new")
    }
    with tempfile.TemporaryDirectory(prefix="assay-bench-questions-") as tmp:
        work = Path(tmp)
        folder = work / "trivial"
        write_service(folder)
        old_src = _old_source(base, work / "old")
        started = time.time()
        for round_number in range(rounds):
            for side, src in (("old", old_src), ("new", None)):
                print(f"round {round_number + 1}/{rounds}: {side} ...", flush=True)
                home = work / f"home-{side}-{round_number}"
                # The fork server is new: the old code has none to measure.
                result = _side(src, folder, home, fresh, fork if side == "new" else 0, pool)
                if side == "old":
                    assert result["code"].startswith(str(old_src)), result["code"]
                else:
                    assert result["code"].startswith(str(ROOT / "src")), result["code"]
                for key in ("fresh", "fork", "pool"):
                    samples[side][key].extend(result[key])
                    samples[side][f"{key}_writes"].append(result[f"{key}_writes"])
        report["seconds"] = round(time.time() - started, 1)
    for side in ("old", "new"):
        report[side] = {
            "fresh_worker": stats_ms(samples[side]["fresh"]),
            "pool_worker": stats_ms(samples[side]["pool"]),
            "catalog_transactions_per_question_fresh": round(
                statistics.fmean(samples[side]["fresh_writes"]), 2
            ),
            "catalog_transactions_per_question_pool": round(
                statistics.fmean(samples[side]["pool_writes"]), 2
            ),
        }
    report["ratios_new_over_old"] = {
        key: round(report["new"][key]["median_ms"] / report["old"][key]["median_ms"], 3)
        for key in ("fresh_worker", "pool_worker")
    }
    report["target"] = "new/old median <= 1.10 for both"
    report["target_met"] = all(r <= 1.10 for r in report["ratios_new_over_old"].values())
    fork_stats = stats_ms(samples["new"]["fork"])
    new = report["new"]
    report["fork_server"] = {
        **fork_stats,
        "catalog_transactions_per_question": round(
            statistics.fmean(samples["new"]["fork_writes"]), 2
        ),
        "median_over_fresh_spawn": round(
            fork_stats["median_ms"] / new["fresh_worker"]["median_ms"], 3
        ),
        "median_over_pool": round(fork_stats["median_ms"] / new["pool_worker"]["median_ms"], 2),
        "target": "median < 50 ms and p99 < 100 ms",
        "median_target_met": fork_stats["median_ms"] < 50,
        "p99_target_met": fork_stats["p99_ms"] < 100,
    }
    report["machine"]["load_average_after"] = load_average()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "questions.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "questions.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| question round trip (trivial values-only app) | old median ms | new median ms | "
        "new/old | old p99 | new p99 | n each |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("fresh_worker", "Child.ask, fresh interpreter spawned per question"),
        ("pool_worker", "Child.ask, reusable pool worker (ASSAY_WORKER_POOL=1)"),
    ):
        old, new = report["old"][key], report["new"][key]
        lines.append(
            f"| {label} | {old['median_ms']} | {new['median_ms']} | "
            f"{report['ratios_new_over_old'][key]} | {old['p99_ms']} | {new['p99_ms']} | "
            f"{new['n']:,} |"
        )
    fork = report["fork_server"]
    fresh_new = report["new"]["fresh_worker"]
    pool_new = report["new"]["pool_worker"]
    lines += [
        "",
        "| question round trip, fresh process per question (new code, same rounds) | median ms | "
        "p99 ms | median / fresh spawn | median / pool | n |",
        "|---|---:|---:|---:|---:|---:|",
        f"| fresh process (fork server, the default) | {fork['median_ms']} | {fork['p99_ms']} | "
        f"{fork['median_over_fresh_spawn']} | {fork['median_over_pool']} | {fork['n']:,} |",
        f"| fresh interpreter spawned (ASSAY_FORK_SERVER=0) | {fresh_new['median_ms']} | "
        f"{fresh_new['p99_ms']} | 1.0 | "
        f"{round(fresh_new['median_ms'] / pool_new['median_ms'], 2)} | {fresh_new['n']:,} |",
        f"| reused pool worker (ASSAY_WORKER_POOL=1, no isolation) | {pool_new['median_ms']} | "
        f"{pool_new['p99_ms']} | "
        f"{round(pool_new['median_ms'] / fresh_new['median_ms'], 3)} | 1.0 | {pool_new['n']:,} |",
        "",
        f"Fork server target: {fork['target']}: median "
        f"{'met' if fork['median_target_met'] else 'NOT met'}, p99 "
        f"{'met' if fork['p99_target_met'] else 'NOT met'}.",
        "",
        "Catalog write transactions per question (old / new): fresh "
        f"{report['old']['catalog_transactions_per_question_fresh']} / "
        f"{report['new']['catalog_transactions_per_question_fresh']}; pool "
        f"{report['old']['catalog_transactions_per_question_pool']} / "
        f"{report['new']['catalog_transactions_per_question_pool']}.",
        "",
        f"Old = the code at {report['base'][:12]} (by default the merge base with main); new = "
        "this tree. Same interpreter, virtualenv and service; rounds alternate old and new; the "
        "fresh rows spawn an interpreter per question on both sides (ASSAY_FORK_SERVER=0).",
        "",
        f"Target: {report['target']}: {'met' if report['target_met'] else 'NOT met'}.",
        "",
        f"Load average (1 min) before / after: {report['machine']['load_average_before'][0]} / "
        f"{report['machine']['load_average_after'][0]} on {report['machine']['cpus']} CPUs (a shared "
        "machine: other work ran meanwhile, and every figure moves with it).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
