"""The bubblewrap sandbox: only the job dir is writable, the store and other jobs are invisible,
network: false means no network; and no silent fallback when bwrap is missing."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from job_helpers import PYTHON, log_text, new_job, script

from assay import api
from assay.core.errors import SandboxUnavailable
from assay.jobs import sandbox, store
from assay.jobs.environments import Environment
from assay.jobs.executors.local import LocalExecutor
from helpers import blob_files, catalog_counts

pytestmark = pytest.mark.skipif(not sandbox.available(), reason="bwrap cannot run here")

ESCAPE = """
import os, sys
targets = sys.argv[1:]
escaped = []
for target in targets:
    try:
        with open(target, "a") as handle:
            handle.write("tampered")
        escaped.append(target)
        print("WROTE", target)
    except OSError as exc:
        print("denied", target, type(exc).__name__)
open(os.path.join(os.environ["OUTPUTS"], "ok.txt"), "w").write("fine")
sys.exit(3 if escaped else 0)
"""


def _bundle_rows() -> dict[str, int]:
    return {k: v for k, v in catalog_counts().items() if not k.startswith("job")}


def _digest(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _sandbox(**options: object) -> Environment:
    return Environment(id="local", isolation="sandbox", max_duration_s=60, **options)  # type: ignore[arg-type]


def test_writes_outside_the_job_dir_fail_inside_the_job_and_touch_nothing(
    assay_home: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "data.csv").write_text("a,b\n1,2\n")
    api.context("ctx")
    api.add("ctx", "table", source / "data.csv")
    blobs = list(blob_files(assay_home).values())
    assert blobs
    before_blobs, before_rows = _digest(blobs), _bundle_rows()
    other_job = tmp_path / "jobs" / "other"
    other_job.mkdir(parents=True)
    (other_job / "result.txt").write_text("theirs")
    algorithm = script(tmp_path / "algo", "escape.py", ESCAPE)
    workdir = tmp_path / "jobs" / "mine"
    targets = [
        *map(str, blobs),
        str(assay_home / "new-file"),
        str(other_job / "result.txt"),
        str(workdir / "inputs" / "data" / "data.csv"),
        str(algorithm),
        "/usr/escaped.txt",
        "/tmp/scratch.txt",
        str(workdir.parent / "sibling.txt"),
    ]
    jid = new_job("escape")
    with LocalExecutor(_sandbox()) as executor:
        executor.submit(
            jid, [PYTHON, str(algorithm), *targets], workdir=workdir, inputs={"data": source}
        )
        record = executor.wait(jid, 60)
    assert record.state == "FINISHED", log_text(jid)
    assert "WROTE" not in log_text(jid) and log_text(jid).count("denied") == len(targets)
    assert record.result == {"returncode": 0, "outputs": ["ok.txt"]}
    assert _digest(blobs) == before_blobs and _bundle_rows() == before_rows
    assert not (assay_home / "new-file").exists() and not Path("/usr/escaped.txt").exists()
    assert not (workdir.parent / "sibling.txt").exists()
    assert (other_job / "result.txt").read_text() == "theirs"
    assert (source / "data.csv").read_text() == "a,b\n1,2\n"


def test_the_same_escape_succeeds_without_the_sandbox(assay_home: Path, tmp_path: Path) -> None:
    # The control: the check above can fail. Unisolated, another job's dir is writable.
    other = tmp_path / "other.txt"
    other.write_text("theirs")
    algorithm = script(tmp_path / "algo", "escape.py", ESCAPE)
    jid = new_job("unisolated")
    with LocalExecutor(Environment(id="local", max_duration_s=60)) as executor:
        executor.submit(jid, [PYTHON, str(algorithm), str(other)], workdir=tmp_path / "w")
        record = executor.wait(jid, 60)
    assert record.state == "FAILED" and "WROTE" in log_text(jid)
    assert other.read_text() == "theirstampered"


NETWORK_PROBE = """
import os, socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
    print("CONNECTED")
except OSError as exc:
    print("no network:", type(exc).__name__)
    sys.exit(4)
"""


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the host's loopback that accepts connections."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize(("network", "state"), [(False, "FAILED"), (True, "FINISHED")])
def test_network_false_means_no_network(
    assay_home: Path, tmp_path: Path, listener: int, network: bool, state: str
) -> None:
    probe = script(tmp_path / "algo", "probe.py", NETWORK_PROBE)
    jid = new_job(f"net-{network}")
    with LocalExecutor(_sandbox(network=network)) as executor:
        executor.submit(jid, [PYTHON, str(probe), str(listener)], workdir=tmp_path / "n")
        record = executor.wait(jid, 60)
    assert record.state == state, log_text(jid)
    if network:
        assert "CONNECTED" in log_text(jid)
    else:
        assert "no network: ConnectionRefusedError" in log_text(jid)
        assert record.error == (
            "the job's process exited with code 4: no network: ConnectionRefusedError"
        )


def test_inputs_are_read_only_and_the_home_is_invisible(assay_home: Path, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "x.txt").write_text("x")
    api.context("ctx")  # creates the home and its catalog
    body = f"""
    import os
    print("home visible:", os.path.exists({str(assay_home)!r}))
    print("input:", open(os.path.join(os.environ["INPUTS"], "d", "x.txt")).read())
    print("tmpdir:", os.environ["TMPDIR"].startswith(os.environ["ASSAY_WORKDIR"]))
    """
    probe = script(tmp_path / "algo", "look.py", body)
    jid = new_job("look")
    with LocalExecutor(_sandbox()) as executor:
        executor.submit(jid, [PYTHON, str(probe)], workdir=tmp_path / "l", inputs={"d": source})
        record = executor.wait(jid, 60)
    assert record.state == "FINISHED", log_text(jid)
    text = log_text(jid)
    assert "home visible: False" in text and "input: x" in text and "tmpdir: True" in text


def test_missing_bwrap_refuses_with_one_line(
    assay_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    saved_path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(empty))
    sandbox._probe.cache_clear()
    jid = new_job("refused")
    try:
        with pytest.raises(SandboxUnavailable) as caught:
            LocalExecutor(_sandbox())
    finally:
        monkeypatch.setenv("PATH", saved_path)
        sandbox._probe.cache_clear()
    message = caught.value.message
    assert "bubblewrap (bwrap) is not installed" in message and "install bubblewrap" in message
    assert "\n" not in message and caught.value.exit_code == 6
    assert store.get_job(jid).state == "CREATED"  # nothing ran, nothing changed
