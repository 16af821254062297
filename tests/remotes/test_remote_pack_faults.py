"""Faults of pack pushes and pulls, with real subprocesses (real moto_server and file://):
``kill -9`` between a pack and its index, two machines pushing packs at once (overlap
proven), and a pull + localize of 10,000 small files."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from remote_helpers import Machine, Remote, remote_bytes, remote_keys
from test_remote_packs import bind, committed, pack_names, small_files

from assay import api
from assay.core.hashing import hash_bytes
from assay.store.packs import scan_records
from assay.store.remote import RemoteStore
from helpers import start_python

SMALL_PACKS = {"ASSAY_REMOTE_PACK_BYTES": "65536"}  # many packs from a few hundred files

_PUSH_THEN_HANG = """
import sys, threading
from pathlib import Path
from assay import api

flag = Path(sys.argv[1])

def progress(done, total):
    # Called once a pack object is complete and before its index is written.
    if done and not flag.exists():
        flag.write_text(str(done))
        threading.Event().wait()  # hold this upload here until the test kills the process

api.push("lab", progress=progress)
"""

_PUSH_MEETING_THE_OTHER = """
import sys, time
from pathlib import Path
from assay import api

mine, other = Path(sys.argv[1]), Path(sys.argv[2])

def progress(done, total):
    if done and not mine.exists():
        mine.write_text("a pack is uploaded")
        deadline = time.monotonic() + 60
        while not other.exists():  # the other push has uploaded a pack too
            if time.monotonic() > deadline:
                raise RuntimeError("the other push never uploaded a pack: no overlap")
            time.sleep(0.005)

report = api.push("lab", progress=progress)
print(",".join(report.pushed))
"""


def _wait_for(path: Path, child: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert child.poll() is None, child.communicate()  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


def test_kill_9_between_a_pack_and_its_index_then_push_again(
    machines: tuple[Machine, Machine],
    remote: Remote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = machines
    bind(a, remote)
    files = small_files(300)
    with a.active():
        bundle = committed("lab", "many", tmp_path / "many", files)
    flag = tmp_path / "pack-sent"
    child = start_python(_PUSH_THEN_HANG, str(flag), env={**a.env(), **SMALL_PACKS})
    try:
        _wait_for(flag, child)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL

    packs, indexes = pack_names(remote)
    orphans = sorted(set(packs) - set(indexes))
    assert orphans, "the killed push left no pack without its index"
    assert remote_keys(remote, "contexts/lab/index") == []  # the bundle is not listed
    orphaned: set[str] = set()
    for name in orphans:
        entries, _end = scan_records(remote_bytes(remote, f"packs/{name}.pack") or b"")
        orphaned |= set(entries)
    assert orphaned
    every = {hash_bytes(content) for content in files.values()}
    # Readers ignore a pack without an index: its blobs count as absent.
    assert not RemoteStore(remote.url).existing_blobs(orphaned)
    bind(b, remote)
    with b.active():
        assert api.pull("lab").pulled == ()

    monkeypatch.setenv("ASSAY_REMOTE_PACK_BYTES", "65536")
    with a.active():
        report = api.push("lab")
    assert report.pushed == (bundle.uuid,)
    assert report.blobs_uploaded + report.blobs_already_there == len(every)
    assert report.blobs_uploaded >= len(orphaned)  # the orphan's blobs were sent again
    assert RemoteStore(remote.url).existing_blobs(every) == every
    with b.active():
        assert api.pull("lab", localize=True).pulled == (bundle.uuid,)
        got = api.get("lab", "many")
        assert got is not None and got.content_hash == bundle.content_hash
        assert {Path(p).name: Path(p).read_bytes() for p in got.data} == files
        assert api.verify() == []


def test_two_machines_pushing_packs_at_once_lose_nothing(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    shared = small_files(100, "s")
    own = {a.name: small_files(100, "a"), b.name: small_files(100, "b")}
    uuids = {}
    for machine in (a, b):
        bind(machine, remote)
        with machine.active():
            files = {**shared, **own[machine.name]}
            uuids[machine.name] = committed(
                "lab", f"from-{machine.name}", tmp_path / machine.name, files
            ).uuid
    flags = {m.name: tmp_path / f"{m.name}.uploaded" for m in (a, b)}
    children = [
        start_python(
            _PUSH_MEETING_THE_OTHER,
            str(flags[m.name]),
            str(flags[o.name]),
            env={**m.env(), **SMALL_PACKS},
        )
        for m, o in ((a, b), (b, a))
    ]
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outputs.append(out.strip())
    # Each push waited, with a pack uploaded, until the other had uploaded one: they overlapped.
    assert outputs == [uuids[a.name], uuids[b.name]]
    assert all(flag.exists() for flag in flags.values())
    packs, indexes = pack_names(remote)
    assert packs == indexes and len(packs) >= 4

    c = Machine("C", tmp_path / "home-c", None)
    bind(c, remote)
    with c.active():
        assert sorted(api.pull("lab", localize=True).pulled) == sorted(uuids.values())
        for machine in (a, b):
            got = api.get("lab", f"from-{machine.name}")
            assert got is not None and got.localized
            expected = {**shared, **own[machine.name]}
            assert {Path(p).name: Path(p).read_bytes() for p in got.data} == expected
        assert api.verify() == []


def test_pull_and_localize_of_ten_thousand_small_files(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    bind(a, remote)
    files = {f"d{i // 1000}/f{i:05}.bin": os.urandom(1024) for i in range(10_000)}
    with a.active():
        bundle = committed("lab", "tenk", tmp_path / "tenk", files)
        report = api.push("lab")
    assert report.blobs_uploaded == 10_000
    assert len(remote_keys(remote, "objects")) == 0 and len(pack_names(remote)[1]) == 1
    bind(b, remote)
    with b.active():
        pulled = api.pull("lab", localize=True)
        assert pulled.localized == (bundle.uuid,)
        assert pulled.bytes_downloaded == 10_000 * 1024
        assert api.verify() == []
        got = api.get("lab", "tenk")
        assert got is not None and got.localized and len(got.data) == 10_000
        sample = sorted(got.data)[::997]
        root = Path(os.path.commonpath(got.data))
        for path in sample:
            assert Path(path).read_bytes() == files[Path(path).relative_to(root).as_posix()]
