"""Server benchmark: the REST API over HTTP on loopback, with 100,000 bundles on PostgreSQL.

Seeds a fresh catalog (rows written in bulk straight into the schema: seeding is not what is
measured) with N bundles tagged ``batch`` (N/1000 per value) and linked into one lineage graph
(bundle i is derived from bundle i // 2: a binary tree of N nodes). Starts the real server
(``python -m assay.server.serve_fd``: uvicorn, with 1 and then 2 worker processes by default)
and measures with 16 concurrent clients (asyncio + httpx, a bounded number of requests each):

- bundle search by tag, bundle detail, lineage (both directions, depth 5): requests/s, p50/p99
  and the server's CPU time per request (its processes' user + system time from /proc: on a
  shared machine latency follows the load, CPU per request much less);
- lineage of the whole 100k-node graph from its root (depth 100, max_nodes 500): truncated,
  p50/p99 (one client);
- file download throughput (a 256 MiB file, warm cache) vs reading the same blob from disk in
  the same run (the reference), first download (hash verified) and later ones;
- SSE: events/s delivered to 50 subscribers of one finished job with 2,000 events.

    .venv/bin/python bench/bench_server.py [--bundles 100000] [--requests 400] [--quick]
                                           [--workers 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, text

from assay.auth import tokens
from assay.bundles import operations
from assay.bundles.workspace import close_workspaces, open_workspace
from assay.catalog.schema import bundles, contexts, links, tags
from assay.core.settings import Settings
from assay.jobs import store

RESULTS = Path(__file__).parent / "results"
BATCHES = 1000
CLIENTS = 16
POSTGRES_ADMIN = os.environ.get(
    "ASSAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def seed(url: str, count: int) -> list[str]:
    engine = create_engine(url)
    now = time.time() - count
    uuids = [str(uuid.UUID(int=random.getrandbits(128), version=4)) for _ in range(count)]
    with engine.begin() as conn:
        ctx_id = conn.execute(
            insert(contexts).values(name="bench", created=now).returning(contexts.c.id)
        ).scalar_one()
        chunk = 10_000
        for start in range(0, count, chunk):
            rows, tag_rows, link_rows = [], [], []
            for i in range(start, min(count, start + chunk)):
                rows.append(
                    {
                        "uuid": uuids[i],
                        "context_id": ctx_id,
                        "name": f"name-{i % 1000}",
                        "processing_name": "bench",
                        "owner": "bench",
                        "created": now + i,
                        "committed": True,
                        "content_hash": f"{i:064x}",
                        "presentation": "scalar",
                        "data": str(i),
                        "params": "{}",
                        "code_version": "{}",
                        "start_time": None,
                        "stop_time": None,
                        "file_count": 0,
                        "total_size": 0,
                    }
                )
                tag_rows.append(
                    {"bundle_uuid": uuids[i], "key": "batch", "value": str(i % BATCHES)}
                )
                if i > 0:
                    link_rows.append(
                        {
                            "bundle_uuid": uuids[i],
                            "target_uuid": uuids[i // 2],
                            "kind": "depends_on",
                            "arg_name": "parent",
                        }
                    )
            conn.execute(insert(bundles), rows)
            conn.execute(insert(tags), tag_rows)
            if link_rows:
                conn.execute(insert(links), link_rows)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
            conn.commit()
    engine.dispose()
    return uuids


def start_server(
    home: Path, url: str, workers: int = 1, env_extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    port = listener.getsockname()[1]
    env = {**os.environ, "ASSAY_HOME": str(home), "ASSAY_CATALOG_URL": url, **(env_extra or {})}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assay.server.serve_fd",
            "--fd",
            str(listener.fileno()),
            "--workers",
            str(workers),
        ],
        env=env,
        pass_fds=[listener.fileno()],
    )
    listener.close()
    return process, f"http://127.0.0.1:{port}"


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants alive now (from /proc):
    the server's own cost per request, which the machine's load does not inflate as much as
    latency."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pending.extend(int(c) for c in children)
    return total


def timed_load(pid: int, base: str, token: str, paths: list[str], clients: int) -> dict[str, float]:
    before = cpu_seconds(pid)
    result = asyncio.run(load(base, token, paths, clients))
    result["server_cpu_ms_per_request"] = round((cpu_seconds(pid) - before) * 1000 / len(paths), 2)
    return result


def figures(samples: list[float], seconds: float) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "requests": len(samples),
        "rps": round(len(samples) / seconds, 1),
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
    }


async def load(base: str, token: str, paths: list[str], clients: int) -> dict[str, float]:
    """``paths`` requested by ``clients`` concurrent clients; every answer must be 200."""
    queue = list(paths)
    samples: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
            while queue:
                path = queue.pop()
                start = time.perf_counter()
                response = await http.get(path)
                samples.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return figures(samples, time.perf_counter() - start)


def download(base: str, token: str, path: str, blob: Path, size: int, pid: int) -> dict[str, Any]:
    """HTTP download GB/s vs reading the blob from disk (page cache warm in both).

    The HTTP client is curl when installed (a C client, so the figure is the server's), else
    httpx (then Python on the client side is part of the figure)."""

    def disk() -> float:
        start = time.perf_counter()
        with open(blob, "rb", buffering=0) as handle:
            while handle.read(1 << 20):
                pass
        return size / (time.perf_counter() - start) / 1e9

    curl = shutil.which("curl")

    def http() -> float:
        if curl is not None:
            out = subprocess.run(
                [
                    curl,
                    "-s",
                    "-f",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{size_download} %{time_total}",
                    "-H",
                    f"Authorization: Bearer {token}",
                    base + path,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            assert int(out[0]) == size, out
            return size / float(out[1]) / 1e9
        start = time.perf_counter()
        got = 0
        with httpx.stream(
            "GET", base + path, headers={"Authorization": f"Bearer {token}"}, timeout=300
        ) as response:
            for chunk in response.iter_raw(1 << 20):
                got += len(chunk)
        assert got == size, got
        return size / (time.perf_counter() - start) / 1e9

    disk()  # warm the page cache
    first = http()  # includes hashing the blob (then remembered as verified)
    cpu_before = cpu_seconds(pid)
    later = [http() for _ in range(3)]
    cpu_per_gib = (cpu_seconds(pid) - cpu_before) / (3 * size / (1 << 30))
    reference = [disk() for _ in range(3)]
    best_http, best_disk = max(later), max(reference)
    return {
        "client": "curl" if curl is not None else "httpx",
        "bytes": size,
        "disk_read_gbps": round(best_disk, 3),
        "http_first_gbps": round(first, 3),
        "http_gbps": round(best_http, 3),
        "ratio_to_disk": round(best_http / best_disk, 3),
        "first_ratio_to_disk": round(first / best_disk, 3),
        "server_cpu_s_per_gib": round(cpu_per_gib, 3),
    }


async def sse(base: str, token: str, job_id: str, subscribers: int, events: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}

    async def subscriber() -> int:
        count = 0
        async with (
            httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as http,
            http.stream("GET", f"/api/v1/jobs/{job_id}/stream") as response,
        ):
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    count += 1
        return count

    start = time.perf_counter()
    counts = await asyncio.gather(*(subscriber() for _ in range(subscribers)))
    seconds = time.perf_counter() - start
    assert all(c == events for c in counts), counts
    return {
        "subscribers": subscribers,
        "events_each": events,
        "seconds": round(seconds, 2),
        "events_per_s": round(sum(counts) / seconds, 1),
    }


def measure(
    backend: str,
    url: str,
    home: Path,
    count: int,
    requests: int,
    quick: bool,
    worker_counts: list[int],
) -> dict[str, Any]:
    settings = Settings(home=home, catalog_url=url)
    workspace = open_workspace(settings)
    seed_start = time.perf_counter()
    uuids = seed(url, count)
    seed_s = time.perf_counter() - seed_start
    _, token = tokens.create_token("bench", ["admin"], workspace=workspace)
    size = (32 if quick else 256) << 20
    data = Path(home) / "big.bin"
    with open(data, "wb") as handle:
        for _ in range(size >> 20):
            handle.write(os.urandom(1 << 20))
    record = operations.create_bundle(workspace, "bench", "big", data)
    data.unlink()
    blob_hash = operations.files_of(workspace, record)[0].blob_hash
    job_id = str(uuid.uuid4())
    store.create_job("bench", job_id, spec={}, workspace=workspace)
    store.fire(job_id, "run", workspace=workspace)
    store.append_events(
        job_id, [("log", {"message": f"line {i}"}) for i in range(1996)], workspace=workspace
    )
    store.fire(job_id, "finish", workspace=workspace)
    sse_events = len(store.list_events(job_id, workspace=workspace))
    rng = random.Random(3)
    search = [
        f"/api/v1/contexts/bench/bundles?tag=batch={rng.randrange(BATCHES)}&limit=50"
        for _ in range(requests)
    ]
    detail = [f"/api/v1/bundles/{rng.choice(uuids)}" for _ in range(requests)]
    lineage = [
        f"/api/v1/lineage?node=bundle:{rng.choice(uuids)}&direction=both&depth=5"
        for _ in range(requests)
    ]
    root = [f"/api/v1/lineage?node=bundle:{uuids[0]}&direction=down&depth=100&max_nodes=500"] * 20
    result: dict[str, Any] = {
        "backend": backend,
        "bundles": count,
        "seed_seconds": round(seed_s, 1),
    }
    result["by_workers"] = {}
    try:
        # The reference for the token cache, in the same run: search with it turned off.
        process, base = start_server(home, url, 1, {"ASSAY_SERVER_TOKEN_CACHE_SECONDS": "0"})
        try:
            httpx.get(f"{base}/api/v1/health", timeout=60)
            asyncio.run(load(base, token, search[:32], CLIENTS))
            result["search_no_token_cache"] = timed_load(process.pid, base, token, search, CLIENTS)
        finally:
            process.terminate()
            process.wait(timeout=30)
        for workers in worker_counts:
            process, base = start_server(home, url, workers)
            try:
                httpx.get(f"{base}/api/v1/health", timeout=60)
                asyncio.run(load(base, token, search[:32], CLIENTS))  # warm-up (every worker)
                pid = process.pid
                result["by_workers"][str(workers)] = {
                    "search": timed_load(pid, base, token, search, CLIENTS),
                    "detail": timed_load(pid, base, token, detail, CLIENTS),
                    "lineage_depth5": timed_load(pid, base, token, lineage, CLIENTS),
                }
                if workers != worker_counts[0]:
                    continue
                result["lineage_100k_truncated"] = timed_load(pid, base, token, root, 1)
                check = httpx.get(
                    base + root[0], headers={"Authorization": f"Bearer {token}"}, timeout=60
                ).json()
                result["lineage_100k_truncated"].update(
                    {
                        "truncated": check["truncated"],
                        "nodes": len(check["nodes"]),
                        "cut": check["cut"],
                    }
                )
                result["download"] = download(
                    base,
                    token,
                    f"/api/v1/bundles/{record.uuid}/files/big.bin",
                    workspace.store.path_for(blob_hash),
                    size,
                    pid,
                )
                result["sse"] = asyncio.run(
                    sse(base, token, job_id, 10 if quick else 50, sse_events)
                )
            finally:
                process.terminate()
                process.wait(timeout=30)
    finally:
        close_workspaces()
    return result


def postgres_url() -> tuple[str, Any] | None:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # no server: report it, measure SQLite only
        print(f"PostgreSQL not reachable ({exc.__class__.__name__}): SQLite only")
        return None
    name = f"assay_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}", (admin, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundles", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--sqlite", action="store_true", help="also measure on SQLite")
    parser.add_argument("--quick", action="store_true", help="10,000 bundles, 100 requests")
    parser.add_argument(
        "--workers",
        default="1,2",
        help="server processes to measure the loaded routes with, comma-separated",
    )
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    count, requests = (10_000, 100) if args.quick else (args.bundles, args.requests)
    random.seed(42)
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="assay-bench-server-") as tmp:
        pg = postgres_url()
        if pg is not None:
            pg_url, (admin, name) = pg
            try:
                results.append(
                    measure(
                        "postgresql",
                        pg_url,
                        Path(tmp) / "pg",
                        count,
                        requests,
                        args.quick,
                        worker_counts,
                    )
                )
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if args.sqlite or pg is None:
            home = Path(tmp) / "sqlite"
            results.append(
                measure(
                    "sqlite",
                    f"sqlite:///{home / 'catalog.db'}",
                    home,
                    count,
                    requests,
                    args.quick,
                    worker_counts,
                )
            )
    report = {
        "benchmark": "server (REST API over loopback HTTP)",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "clients": CLIENTS,
        "targets": {
            "search_p99_ms": 50,
            "download_ratio_to_disk": 0.7,
            "lineage_100k_truncated_ms": 200,
        },
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "server.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"Load average before/after: {report['load_average_before']} / "
        f"{report['load_average_after']} (2 cores shared with other work). "
        f"{CLIENTS} concurrent clients on loopback (an asyncio httpx client on the same "
        "machine). Server CPU = user + system time of the server's processes per request "
        "(less sensitive to the machine's load than latency).",
        "",
        "| backend | bundles | workers | route | req/s | p50 ms | p99 ms | server CPU ms/req "
        "| target | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows = [
            (workers, key, label, target, met)
            for workers, by_route in r["by_workers"].items()
            for key, label, target, met in (
                ("search", "search by tag", "p99 < 50 ms", by_route["search"]["p99_ms"] < 50),
                ("detail", "bundle detail", "", None),
                ("lineage_depth5", "lineage depth 5", "", None),
            )
        ]
        for workers, key, label, target, met in rows:
            f = r["by_workers"][workers][key]
            lines.append(
                f"| {r['backend']} | {r['bundles']:,} | {workers} | {label} | {f['rps']} | "
                f"{f['p50_ms']} | {f['p99_ms']} | {f['server_cpu_ms_per_request']} | {target} | "
                f"{'' if met is None else ('yes' if met else 'NO')} |"
            )
        f = r["search_no_token_cache"]
        lines.append(
            f"| {r['backend']} | {r['bundles']:,} | 1 | search by tag, token cache off "
            f"(reference) | {f['rps']} | {f['p50_ms']} | {f['p99_ms']} | "
            f"{f['server_cpu_ms_per_request']} |  |  |"
        )
        f = r["lineage_100k_truncated"]
        lines.append(
            f"| {r['backend']} | {r['bundles']:,} | 1 | lineage, 100k graph, truncated "
            f"(1 client) | {f['rps']} | {f['p50_ms']} | {f['p99_ms']} | "
            f"{f['server_cpu_ms_per_request']} | < 200 ms | "
            f"{'yes' if f['p99_ms'] < 200 else 'NO'} |"
        )
    lines += [
        "",
        "| backend | download GB/s (later / first) | disk read GB/s | ratio | server CPU s/GiB "
        "| target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        d = r["download"]
        lines.append(
            f"| {r['backend']} ({d['client']}) | {d['http_gbps']} / {d['http_first_gbps']} | {d['disk_read_gbps']} | "
            f"{d['ratio_to_disk']} (first {d['first_ratio_to_disk']}) | "
            f"{d['server_cpu_s_per_gib']} | >= 0.7 | "
            f"{'yes' if d['ratio_to_disk'] >= 0.7 else 'NO'} |"
        )
    lines += ["", "| backend | SSE subscribers | events each | events/s |", "|---|---|---|---|"]
    for r in results:
        s = r["sse"]
        lines.append(
            f"| {r['backend']} | {s['subscribers']} | {s['events_each']} | {s['events_per_s']} |"
        )
    table = "\n".join(lines)
    (RESULTS / "server.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
