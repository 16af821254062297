"""Helpers for the remote suite: moto_server, looking at a remote's objects directly (boto3
or the file system), and machines (an ASSAY_HOME plus a catalog each). They only start servers
and look at what Assay wrote; nothing here stands in for Assay's code."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.bundles.workspace import close_workspaces

MOTO_SERVER = Path(sys.executable).with_name("moto_server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]


def start_moto(extra_env: dict[str, str] | None = None) -> MotoServer | None:
    if not MOTO_SERVER.exists():
        return None
    port = free_port()
    process = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(extra_env or {})},
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return MotoServer(endpoint, process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    return None


#: The fake credentials moto_server accepts (boto3 refuses to sign without some).
AWS_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def running_moto() -> Iterator[str]:
    """A moto_server on loopback for the block: its endpoint (skipped, or failed under
    ASSAY_REQUIRE_SERVICES=1, when it cannot start)."""
    from helpers import skip_or_fail

    server = start_moto()
    if server is None:
        skip_or_fail("moto_server could not be started")
    assert server is not None
    try:
        yield server.endpoint
    finally:
        stop_moto(server)


def stop_moto(server: MotoServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


def make_bucket(endpoint: str, name: str | None = None) -> str:
    import boto3

    bucket = name or f"assay-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    return bucket


@dataclass(frozen=True)
class Remote:
    kind: str  # "s3" or "file"
    url: str
    endpoint: str | None

    def object_path(self, key: str) -> str:
        return f"{self.url}/{key}"


def remote_bytes(remote: Remote, key: str) -> bytes | None:
    """Read one object of the remote directly (boto3 or the file system)."""
    if remote.kind == "file":
        path = Path(remote.url.removeprefix("file://")) / key
        return path.read_bytes() if path.exists() else None
    client = s3_client(remote)
    bucket, _, prefix = remote.url.removeprefix("s3://").partition("/")
    try:
        return bytes(client.get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


def write_remote_bytes(remote: Remote, key: str, data: bytes) -> None:
    if remote.kind == "file":
        path = Path(remote.url.removeprefix("file://")) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    bucket, _, prefix = remote.url.removeprefix("s3://").partition("/")
    s3_client(remote).put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)


def remote_keys(remote: Remote, prefix: str = "") -> list[str]:
    """Every object key under the remote root (relative), sorted."""
    if remote.kind == "file":
        root = Path(remote.url.removeprefix("file://"))
        base = root / prefix
        if not base.exists():
            return []
        return sorted(
            p.relative_to(root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
    client = s3_client(remote)
    bucket, _, root_prefix = remote.url.removeprefix("s3://").partition("/")
    keys: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{root_prefix}/{prefix}"):
        keys.extend(obj["Key"][len(root_prefix) + 1 :] for obj in page.get("Contents", []))
    return sorted(keys)


def s3_client(remote: Remote) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=remote.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@dataclass
class Machine:
    """One machine: its own ASSAY_HOME and catalog (None: SQLite under the home)."""

    name: str
    home: Path
    catalog_url: str | None

    def env(self) -> dict[str, str]:
        env = {"ASSAY_HOME": str(self.home)}
        if self.catalog_url is not None:
            env["ASSAY_CATALOG_URL"] = self.catalog_url
        return env

    @contextlib.contextmanager
    def active(self) -> Iterator[Machine]:
        saved = {k: os.environ.get(k) for k in ("ASSAY_HOME", "ASSAY_CATALOG_URL")}
        close_workspaces()
        os.environ["ASSAY_HOME"] = str(self.home)
        if self.catalog_url is None:
            os.environ.pop("ASSAY_CATALOG_URL", None)
        else:
            os.environ["ASSAY_CATALOG_URL"] = self.catalog_url
        try:
            yield self
        finally:
            close_workspaces()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
