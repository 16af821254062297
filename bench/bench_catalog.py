"""Catalog query benchmark: tag search and get-latest with 100,000 bundles, SQLite and PostgreSQL.

Seeds a fresh catalog with N bundles (rows written in bulk straight into the schema: seeding is
not what is measured), then times the public domain calls a user's ``assay search --tag`` and
``assay.api.get`` make, each over many random queries. Reference in the same run: the floor of
one trivial round trip (``SELECT 1``) on the same engine, so each figure is also a ratio.

    .venv/bin/python bench/bench_catalog.py [--bundles 100000] [--queries 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

from assay.bundles import operations
from assay.bundles.workspace import close_workspaces, open_workspace
from assay.catalog.schema import bundles, contexts, tags
from assay.core.settings import load_settings

RESULTS = Path(__file__).parent / "results"
NAMES = 1000  # distinct bundle names: 100 versions each at 100k bundles
BATCHES = 1000  # distinct values of tag "batch": 100 bundles each at 100k bundles
POSTGRES_ADMIN = os.environ.get(
    "ASSAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def seed(url: str, count: int) -> None:
    engine = create_engine(url)
    now = time.time() - count
    with engine.begin() as conn:
        ctx_id = conn.execute(
            insert(contexts).values(name="bench", created=now).returning(contexts.c.id)
        ).scalar_one()
        chunk = 10_000
        for start in range(0, count, chunk):
            rows, tag_rows = [], []
            for i in range(start, min(count, start + chunk)):
                bundle_uuid = str(uuid.UUID(int=random.getrandbits(128), version=4))
                rows.append(
                    {
                        "uuid": bundle_uuid,
                        "context_id": ctx_id,
                        "name": f"name-{i % NAMES}",
                        "processing_name": f"name-{i % NAMES}",
                        "owner": "bench",
                        "created": now + i,
                        "committed": i % 3 == 0,
                        "content_hash": f"{i:064x}",
                        "presentation": "scalar",
                        "data": str(i),
                        "params": "{}",
                        "code_version": "{}",
                        "start_time": now + i,
                        "stop_time": now + i,
                        "file_count": 0,
                        "total_size": 0,
                    }
                )
                tag_rows.append(
                    {"bundle_uuid": bundle_uuid, "key": "batch", "value": str(i % BATCHES)}
                )
                tag_rows.append({"bundle_uuid": bundle_uuid, "key": "kind", "value": str(i % 10)})
            conn.execute(insert(bundles), rows)
            conn.execute(insert(tags), tag_rows)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()


def timed(calls: int, action: Any) -> dict[str, float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 3),
    }


def measure(backend: str, url: str, home: Path, count: int, calls: int) -> dict[str, Any]:
    os.environ["ASSAY_HOME"] = str(home)
    os.environ["ASSAY_CATALOG_URL"] = url
    close_workspaces()
    workspace = open_workspace(load_settings())  # creates the schema
    seed_start = time.perf_counter()
    seed(url, count)
    seed_seconds = time.perf_counter() - seed_start
    rng = random.Random(7)

    def floor() -> None:
        with workspace.read() as conn:
            conn.execute(text("SELECT 1"))

    def tag_search() -> None:
        found = operations.search(workspace, "bench", tags={"batch": rng.randrange(BATCHES)})
        assert len(found) == count // BATCHES

    def tag_search_two() -> None:
        operations.search(
            workspace, "bench", tags={"batch": rng.randrange(BATCHES), "kind": rng.randrange(10)}
        )

    def get_latest() -> None:
        record = operations.get(workspace, "bench", f"name-{rng.randrange(NAMES)}")
        assert record is not None

    floor_figures = timed(calls, floor)
    result = {
        "backend": backend,
        "bundles": count,
        "seed_seconds": round(seed_seconds, 2),
        "round_trip_floor": floor_figures,
        "search_by_tag": timed(calls, tag_search),
        "search_by_two_tags": timed(calls, tag_search_two),
        "get_latest": timed(calls, get_latest),
    }
    for key in ("search_by_tag", "search_by_two_tags", "get_latest"):
        result[key]["ratio_to_round_trip"] = round(
            result[key]["median_ms"] / max(floor_figures["median_ms"], 1e-6), 1
        )
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
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10,000 bundles, 50 queries")
    args = parser.parse_args()
    count, calls = (10_000, 50) if args.quick else (args.bundles, args.queries)
    random.seed(42)
    results = []
    with tempfile.TemporaryDirectory(prefix="assay-bench-catalog-") as tmp:
        sqlite_home = Path(tmp) / "sqlite"
        url = f"sqlite:///{sqlite_home / 'catalog.db'}"
        results.append(measure("sqlite", url, sqlite_home, count, calls))
        pg = postgres_url()
        if pg is not None:
            pg_url, (admin, name) = pg
            try:
                results.append(measure("postgresql", pg_url, Path(tmp) / "pg", count, calls))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    report = {
        "benchmark": "catalog queries",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "target": "tag search at 100k bundles < 20 ms median",
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "catalog.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| backend | bundles | search by tag (median / p95 ms) | two tags (median ms) "
        "| get latest (median / p95 ms) | round-trip floor (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['bundles']:,} | {r['search_by_tag']['median_ms']} / "
            f"{r['search_by_tag']['p95_ms']} | {r['search_by_two_tags']['median_ms']} | "
            f"{r['get_latest']['median_ms']} / {r['get_latest']['p95_ms']} | "
            f"{r['round_trip_floor']['median_ms']} |"
        )
    table = "\n".join(lines)
    (RESULTS / "catalog.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
