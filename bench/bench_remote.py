"""Remote benchmark: push and pull to moto_server on loopback, against plain boto3 and DVC.

For a 1 GiB file and 10,000 x 10 KiB files (``--quick``: 128 MiB and 2,000 files), in one run:

Big file: best of ``--tries`` (3) uploads for boto3 and Assay, alternating (moto writes the
completed 1 GiB object to disk, which varies by 2x from one try to the next); one download
each, and one try of everything for the small files (they take minutes).

- **boto3 upload / download**: the reference, the link's practical limit here. Big file:
  ``client.upload_file`` / ``download_file`` (s3transfer: multipart, 10 threads). Small files:
  ``put_object`` / ``get_object`` on 16 threads (Assay's default parallelism).
- **Assay push**: ``api.push`` of a committed bundle of the same bytes into a fresh bucket
  (small files travel as remote packs of ``ASSAY_REMOTE_PACK_BYTES`` plus an index each).
- **Assay re-push, nothing new**: ``api.push`` again right after.
- **Assay pull + localize**: ``api.pull(localize=True)`` into a fresh ASSAY_HOME (metadata, then
  every blob downloaded and hash-verified; small ones read from the remote packs by coalesced
  byte ranges and stored in a local pack).
- **dvc push / dvc pull**: DVC 3 with dvc-s3 in its own venv (``bench/peers.py``), a fresh
  repository, the same server; ``dvc pull`` after emptying DVC's cache and workspace copy.

Ratios are ``reference_seconds / row_seconds`` (above 1: the row is faster). The moto server
runs on this machine's 2 CPUs next to the client, so every figure includes the server's cost.
Writes ``bench/results/remote.json`` and ``remote.md`` (``remote.quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import peers
from ingestbench.datasets import Dataset, ensure_datasets, read_all
from ingestbench.machine import load_average, machine_info

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return process, endpoint
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("moto_server did not start")


def client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, config=Config(max_pool_connections=32), **_aws_kwargs()
    )


def _aws_kwargs() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS["AWS_DEFAULT_REGION"],
    }


def new_bucket(s3: Any) -> str:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def files_of(dataset: Dataset) -> list[Path]:
    if dataset.path.is_file():
        return [dataset.path]
    return sorted(p for p in dataset.path.rglob("*") if p.is_file())


# -- rows -----------------------------------------------------------------------------------
def boto3_rows(
    dataset: Dataset, endpoint: str, scratch: Path, download: bool = True
) -> dict[str, float]:
    read_all(dataset)  # warm, as the blob Assay reads was just written
    os.sync()
    s3 = client(endpoint)
    bucket = new_bucket(s3)
    paths = files_of(dataset)
    if dataset.files == 1:
        up = timed(lambda: s3.upload_file(str(paths[0]), bucket, "big"))
        if not download:
            return {"boto3 upload": up}
        target = scratch / "boto3-down.bin"
        os.sync()
        down = timed(lambda: s3.download_file(bucket, "big", str(target)))
        target.unlink()
        return {"boto3 upload": up, "boto3 download": down}

    def put(path: Path) -> None:
        s3.put_object(Bucket=bucket, Key=f"small/{path.name}", Body=path.read_bytes())

    def get(path: Path) -> None:
        body = s3.get_object(Bucket=bucket, Key=f"small/{path.name}")["Body"].read()
        (scratch / "boto3-down" / path.name).write_bytes(body)

    with ThreadPoolExecutor(16) as pool:
        up = timed(lambda: list(pool.map(put, paths)))
        if not download:
            return {"boto3 upload": up}
        (scratch / "boto3-down").mkdir()
        down = timed(lambda: list(pool.map(get, paths)))
    return {"boto3 upload": up, "boto3 download": down}


_ASSAY_CHILD = r"""
import json, os, sys, time
from assay import api

def warm(root):  # warm cache, as boto3's source is: idle page cache is reclaimed here
    for directory, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(directory, name), "rb", buffering=0) as handle:
                while handle.read(8 << 20):
                    pass
step, url, path = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
if step == "push":
    api.context("bench")
    api.remote("bench", "bench", url)
    api.add("bench", "data", path)
    api.commit("bench", "data")
    os.sync()  # the add's dirty pages must not be flushed on the push's clock
    warm(os.path.join(os.environ["ASSAY_HOME"], "store", "objects"))
    t = time.perf_counter(); r = api.push("bench"); out["push"] = time.perf_counter() - t
    out["uploaded"] = r.blobs_uploaded
    t = time.perf_counter(); r = api.push("bench"); out["repush"] = time.perf_counter() - t
    out["repush_uploaded"] = r.blobs_uploaded
else:
    api.context("bench")
    api.remote("bench", "bench", url)
    os.sync()
    t = time.perf_counter(); r = api.pull("bench", localize=True); out["pull"] = time.perf_counter() - t
    out["downloaded"] = r.bytes_downloaded
print(json.dumps(out))
"""


def assay_rows(
    dataset: Dataset, endpoint: str, scratch: Path, download: bool = True
) -> dict[str, float]:
    s3 = client(endpoint)
    bucket = new_bucket(s3)
    url = f"s3://{bucket}/assay"
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "AWS_"))}
        | AWS
        | {"AWS_ENDPOINT_URL": endpoint}
    )

    def run(step: str, home: Path) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-c", _ASSAY_CHILD, step, url, str(dataset.path)],
            env={**env, "ASSAY_HOME": str(home)},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip()[-2000:])
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))

    pushed = run("push", scratch / "assay-a")
    rows = {"Assay push": pushed["push"], "Assay re-push, nothing new": pushed["repush"]}
    if download:
        rows["Assay pull + localize"] = run("pull", scratch / "assay-b")["pull"]
    return rows


def _warm(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb", buffering=0) as handle:
                while handle.read(8 << 20):
                    pass


def dvc_rows(dataset: Dataset, endpoint: str, scratch: Path) -> dict[str, float]:
    peer = peers.PEERS["dvc"]
    peers.build(peer, peers.default_python())
    dvc = str(peer.venv / "bin" / "dvc")
    s3 = client(endpoint)
    bucket = new_bucket(s3)
    repo = scratch / "dvc-repo"
    repo.mkdir()
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "AWS_", "DVC_"))}
        | AWS
        | {"DVC_NO_ANALYTICS": "1", "HOME": str(scratch / "dvc-home")}
    )

    def sh(*args: str) -> None:
        result = subprocess.run(
            args, cwd=repo, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()[-2000:]}")

    target = repo / dataset.path.name
    if dataset.path.is_dir():
        shutil.copytree(dataset.path, target)
    else:
        shutil.copyfile(dataset.path, target)
    sh("git", "init", "-q")
    sh(dvc, "init", "-q")
    sh(dvc, "remote", "add", "-d", "bench", f"s3://{bucket}/dvc")
    sh(dvc, "remote", "modify", "bench", "endpointurl", endpoint)
    sh(dvc, "add", "-q", target.name)
    os.sync()
    _warm(repo / ".dvc" / "cache")
    push = timed(lambda: sh(dvc, "push", "-q"))
    shutil.rmtree(repo / ".dvc" / "cache")
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    os.sync()
    pull = timed(lambda: sh(dvc, "pull", "-q"))
    return {"dvc push": push, "dvc pull": pull}


# -- report ---------------------------------------------------------------------------------
def summarise(dataset: Dataset, seconds: dict[str, float]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name, value in seconds.items():
        reference = "boto3 download" if ("pull" in name or "download" in name) else "boto3 upload"
        row: dict[str, Any] = {
            "seconds": value,
            "mb_per_s": dataset.bytes / value / 1e6,
            "files_per_s": dataset.files / value,
        }
        if name != reference and "re-push" not in name and reference in seconds:
            row["vs_boto3"] = seconds[reference] / value
        rows[name] = row
    for mine, theirs in (("Assay push", "dvc push"), ("Assay pull + localize", "dvc pull")):
        if mine in seconds and theirs in seconds:
            rows[mine]["vs_dvc"] = seconds[theirs] / seconds[mine]
    return {"label": dataset.label, "files": dataset.files, "bytes": dataset.bytes, "rows": rows}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    big = results.get("big_file", {}).get("rows", {})
    small = results.get("small_files", {}).get("rows", {})
    if "Assay push" in big and "vs_boto3" in big["Assay push"]:
        value = big["Assay push"]["vs_boto3"]
        out.append(
            {
                "target": "big file push >= 80% of plain boto3 bytes/s",
                "value": value,
                "met": value >= 0.8,
            }
        )
    for row, peer, label in (
        ("Assay push", "vs_dvc", "small files push >= 5x DVC push's files/s"),
        ("Assay push", "vs_boto3", "small files push >= 5x a one-request-per-file boto3 loop"),
        ("Assay pull + localize", "vs_dvc", "small files pull + localize >= 5x DVC pull's files/s"),
        (
            "Assay pull + localize",
            "vs_boto3",
            "small files pull + localize >= 5x a one-request-per-file boto3 loop",
        ),
    ):
        if row in small and peer in small[row]:
            value = small[row][peer]
            out.append({"target": label, "value": value, "met": value >= 5})
    if "Assay re-push, nothing new" in small:
        value = small["Assay re-push, nothing new"]["seconds"]
        out.append(
            {"target": "re-push of unchanged small files < 1 s", "value": value, "met": value < 1}
        )
    return out


def markdown(document: dict[str, Any]) -> str:
    lines = [
        f"Remote benchmark ({document['mode']}, {document['when']}). moto_server on loopback; "
        f"load average before / after: {document['load_before']} / {document['load_after']}. "
        "The machine is shared (other work runs beside the benchmark), so absolute figures vary "
        "from run to run; the ratios compare rows measured in the same run.",
        "",
    ]
    for result in document["datasets"].values():
        label = result["label"]
        if result.get("from_run"):
            before, after = result.get("load", [None, None])
            label += f" (run of {result['from_run']}; load before / after {before} / {after})"
        lines += [
            f"| {label} | seconds | MB/s | files/s | vs boto3 | vs DVC |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in result["rows"].items():
            lines.append(
                f"| {name} | {row['seconds']:.3g} | {row['mb_per_s']:.3g} | "
                f"{row['files_per_s']:,.0f} | {row.get('vs_boto3', '-') if 'vs_boto3' not in row else format(row['vs_boto3'], '.3g')} | "
                f"{format(row['vs_dvc'], '.3g') if 'vs_dvc' in row else '-'} |"
            )
        lines.append("")
    lines.append("Targets:")
    for target in document["targets"]:
        lines.append(
            f"- {target['target']}: {target['value']:.3g}: {'met' if target['met'] else 'NOT met'}"
        )
    for key, error in document.get("errors", {}).items():
        lines.append(f"- error in {key}: {error}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 MiB and 2,000 files")
    parser.add_argument("--skip-dvc", action="store_true")
    parser.add_argument(
        "--tries", type=int, default=3, help="big file: best of N uploads (boto3 and Assay)"
    )
    parser.add_argument("--only", choices=["big_file", "small_files"], help="one dataset")
    args = parser.parse_args()
    big, small_count = (128 * 2**20, 2000) if args.quick else (2**30, 10_000)
    datasets = ensure_datasets(WORK / "data", big, small_count, 10 * 1024)
    process, endpoint = start_moto()
    load_before = load_average()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    try:
        for dataset in datasets:
            if args.only and dataset.key != args.only:
                continue
            seconds: dict[str, float] = {}
            samples: dict[str, list[float]] = {}
            tries = args.tries if dataset.files == 1 else 1
            plan: list[tuple[Callable[..., dict[str, float]], bool]] = []
            for attempt in range(tries):  # uploads alternate; downloads in the last try only
                last = attempt == tries - 1
                plan += [(boto3_rows, last), (assay_rows, last)]
            if not args.skip_dvc:
                plan.append((dvc_rows, True))
            for step, download in plan:
                scratch = WORK / "scratch" / f"remote-{uuid.uuid4().hex[:8]}"
                scratch.mkdir(parents=True)
                try:
                    if step is dvc_rows:
                        measured = step(dataset, endpoint, scratch)
                    else:
                        measured = step(dataset, endpoint, scratch, download)
                    for key, value in measured.items():
                        samples.setdefault(key, []).append(value)
                        seconds[key] = min(samples[key])
                except Exception as exc:  # a failed peer must not lose the other rows
                    errors[f"{dataset.key}/{step.__name__}"] = str(exc)[:500]
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
                print(
                    dataset.key,
                    step.__name__,
                    {k: round(v, 3) for k, v in seconds.items()},
                    flush=True,
                )
            results[dataset.key] = summarise(dataset, seconds)
            results[dataset.key]["samples"] = samples
    finally:
        process.terminate()
    document = {
        "mode": "quick" if args.quick else "full",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(WORK),
        "versions": {p: importlib.metadata.version(p) for p in ("assay", "s3fs", "boto3", "moto")},
        "load_before": load_before,
        "load_after": load_average(),
        "datasets": results,
        "targets": targets(results),
        "errors": errors,
    }
    suffix = ".quick" if args.quick else ""
    RESULTS.mkdir(exist_ok=True)
    previous = RESULTS / f"remote{suffix}.json"
    if args.only and previous.exists():  # keep the other dataset's rows from the last run
        old = json.loads(previous.read_text())
        for key, value in old.get("datasets", {}).items():
            if key != args.only:
                results[key] = {
                    **value,
                    "from_run": old.get("when"),
                    "load": [old.get("load_before"), old.get("load_after")],
                }
        document["datasets"] = results
        document["targets"] = targets(results)
    (RESULTS / f"remote{suffix}.json").write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / f"remote{suffix}.md").write_text(markdown(document))
    print(markdown(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
