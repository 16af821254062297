"""Managed pipeline jobs: webhook events/s and indexing speed.

1. Webhook: a real ``assay serve`` (uvicorn, one process) on loopback; 8 client threads (httpx,
   keep-alive) each drive their own RUNNING job with ``update`` events carrying event ids (so
   the replay guard runs on every event), a bounded count in all. Catalog on SQLite and on
   PostgreSQL. Reported: events/s, p50/p99 latency. Reference in the same run: the same clients
   on ``GET /health`` (the HTTP floor of this server on this machine).
2. Indexing: an archive of 10,000 small files indexed through the job layer (``index`` event:
   an indexing job, bundle with BLAKE3 + size per file, catalog rows). Reference in the same
   run: raw BLAKE3 over the same files (open, read, hash), single thread.

    .venv/bin/python bench/bench_pipelinejobs.py [--events 4000] [--files 10000] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import httpx
from sqlalchemy import create_engine, text

RESULTS = Path(__file__).parent / "results"
ASSAY = str(Path(sys.executable).with_name("assay"))
CLIENTS = 8
POSTGRES_ADMIN = os.environ.get(
    "ASSAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PIPELINE = {"id": "bench/pipeline", "name": "bench", "version": "1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _environment(home: Path, catalog_url: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("ASSAY_HOME", "ASSAY_CATALOG_URL")}
    os.environ["ASSAY_HOME"] = str(home)
    if catalog_url:
        os.environ["ASSAY_CATALOG_URL"] = catalog_url
    else:
        os.environ.pop("ASSAY_CATALOG_URL", None)
    from assay.bundles.workspace import close_workspaces

    close_workspaces()
    try:
        yield
    finally:
        close_workspaces()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _server(workers: int) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [ASSAY, "serve", "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
        env=dict(os.environ),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _load(
    urls: list[str], per_client: int, body: Any
) -> tuple[float, list[float], int]:  # (seconds, latencies, errors)
    latencies: list[list[float]] = [[] for _ in urls]
    errors = [0] * len(urls)
    barrier = threading.Barrier(len(urls) + 1)

    def client(index: int) -> None:
        with httpx.Client(timeout=30) as session:
            barrier.wait()
            for n in range(per_client):
                started = time.perf_counter()
                if body is None:
                    response = session.get(urls[index])
                else:
                    response = session.post(urls[index], json=body(index, n))
                latencies[index].append(time.perf_counter() - started)
                if response.status_code >= 300:
                    errors[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return elapsed, [x for chunk in latencies for x in chunk], sum(errors)


def _summary(elapsed: float, latencies: list[float], errors: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
    }


def bench_webhook(
    backend: str, catalog_url: str | None, events: int, workers: int = 1
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pjob-bench-") as tmp:
        home = Path(tmp) / "home"
        with _environment(home, catalog_url):
            from assay.bundles.workspace import open_workspace
            from assay.pipelinejobs import ManagedPipelineJob
            from assay.pjobs.pipelines import register

            workspace = open_workspace()
            register(workspace, PIPELINE)
            with _server(workers) as url:
                hooks = []
                for i in range(CLIENTS):
                    job = ManagedPipelineJob(
                        workspace, PIPELINE["id"], measurement_id=f"m{i}"
                    ).setup()
                    job.run()
                    hooks.append(job.build_webhook(url))
                per_client = events // CLIENTS
                _load(hooks, 20, lambda i, n: {"event": "update", "data": {"warm": n}})
                floor = _summary(*_load([f"{url}/health"] * CLIENTS, per_client, None))
                run = uuid.uuid4().hex[:8]
                result = _summary(
                    *_load(
                        hooks,
                        per_client,
                        lambda i, n: {"event": "update", "id": f"{run}-{n}", "data": {"n": n}},
                    )
                )
    return {
        "backend": backend,
        "server_workers": workers,
        "clients": CLIENTS,
        "webhook": result,
        "health_floor": floor,
        "ratio_to_floor": round(result["per_second"] / floor["per_second"], 3),
    }


def bench_index(files: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pjob-index-") as tmp:
        home = Path(tmp) / "home"
        with _environment(home, None):
            from assay.bundles.workspace import open_workspace
            from assay.pipelinejobs import ManagedPipelineJob
            from assay.pjobs.pipelines import register

            workspace = open_workspace()
            register(workspace, PIPELINE)
            job = ManagedPipelineJob(workspace, PIPELINE["id"], measurement_id="m-index").setup()
            assert job.job is not None
            folder = Path(job.job.local_path)
            total = 0
            for i in range(files):
                path = folder / f"d{i % 100:02d}" / f"f{i:05d}.dat"
                path.parent.mkdir(parents=True, exist_ok=True)
                data = os.urandom(1024 + (i * 37) % 3072)
                path.write_bytes(data)
                total += len(data)
            paths = sorted(str(p) for p in folder.rglob("*.dat"))
            started = time.perf_counter()
            for path_text in paths:
                with open(path_text, "rb") as handle:
                    blake3.blake3(handle.read()).hexdigest()
            raw = time.perf_counter() - started
            copies = Path(tmp) / "copies"
            copies.mkdir()
            started = time.perf_counter()
            for n, path_text in enumerate(paths):
                shutil.copyfile(path_text, copies / f"{n}.dat")
            copy = time.perf_counter() - started
            job.run()
            job.finish()
            started = time.perf_counter()
            record = job.index()
            indexing = time.perf_counter() - started
            assert record.state == "FINISHED", record.error
            assert record.result is not None
            assert record.result["index"]["files_indexed"] == files
    return {
        "files": files,
        "bytes": total,
        "raw_blake3_s": round(raw, 3),
        "raw_blake3_files_per_s": round(files / raw, 1),
        "copy_floor_s": round(copy, 3),
        "copy_floor_files_per_s": round(files / copy, 1),
        "index_s": round(indexing, 3),
        "index_files_per_s": round(files / indexing, 1),
        "ratio_to_raw_blake3": round(raw / indexing, 3),
        "ratio_to_copy_floor": round(copy / indexing, 3),
    }


@contextlib.contextmanager
def _postgres() -> Iterator[str | None]:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"pjob_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server: report it instead of a figure
        print(f"PostgreSQL unavailable: {type(exc).__name__}")
        admin.dispose()
        yield None
        return
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="800 events, 2,000 files")
    args = parser.parse_args()
    events, files = (800, 2000) if args.quick else (args.events, args.files)
    load_before = os.getloadavg()
    webhook = [bench_webhook("sqlite", None, events)]
    with _postgres() as pg_url:
        if pg_url is not None:
            webhook.append(bench_webhook("postgresql", pg_url, events))
    with _postgres() as pg_url:
        if pg_url is not None:
            webhook.append(bench_webhook("postgresql", pg_url, events, workers=2))
    index = bench_index(files)
    pgs = [w for w in webhook if w["backend"] == "postgresql"]
    pg = max(pgs, key=lambda w: w["webhook"]["per_second"]) if pgs else None
    targets = {
        "webhook_pg_500_per_s": None if pg is None else pg["webhook"]["per_second"] >= 500,
        "webhook_pg_p99_under_50ms": None if pg is None else pg["webhook"]["p99_ms"] < 50,
        "index_at_least_half_raw_blake3": index["ratio_to_raw_blake3"] >= 0.5,
    }
    report = {
        "webhook": webhook,
        "index": index,
        "targets_met": targets,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipelinejobs.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Managed pipeline jobs benchmark",
        "",
        f"{report['when']}, {os.cpu_count()} CPUs, load average before "
        f"{report['load_average_before']} after {report['load_average_after']}.",
        "",
        "| webhook (8 clients, `update` events with ids) | events/s | p50 ms | p99 ms | "
        "GET /health floor /s | ratio to floor |",
        "|---|---|---|---|---|---|",
    ]
    for w in webhook:
        h = w["webhook"]
        lines.append(
            f"| {w['backend']}, {w['server_workers']} server process(es) ({h['requests']} events, "
            f"{h['errors']} errors) | {h['per_second']} "
            f"| {h['p50_ms']} | {h['p99_ms']} | {w['health_floor']['per_second']} "
            f"| {w['ratio_to_floor']} |"
        )
    lines += [
        "",
        "| indexing | files | MB | seconds | files/s | raw BLAKE3 files/s | ratio to raw BLAKE3 "
        "| copy-only floor files/s | ratio to copy floor |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| archive level, SQLite | {index['files']} | {index['bytes'] / 1e6:.1f} | "
        f"{index['index_s']} | {index['index_files_per_s']} | {index['raw_blake3_files_per_s']} "
        f"| {index['ratio_to_raw_blake3']} | {index['copy_floor_files_per_s']} "
        f"| {index['ratio_to_copy_floor']} |",
        "",
        "Targets: " + ", ".join(
            f"{name}: {'met' if ok else ('not measured' if ok is None else 'NOT MET')}"
            for name, ok in targets.items()
        ),
    ]  # fmt: skip
    (RESULTS / "pipelinejobs.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
