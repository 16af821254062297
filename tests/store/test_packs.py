"""Pack files: small blobs of bulk adds live in packs, every read is verified, and faults
(kill -9 while packing or repacking, a corrupted byte, a truncated index, two adders at
once, gc during an add) lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from assay import api
from assay.bundles.workspace import close_workspaces, open_workspace
from assay.store.packs import PackSet
from helpers import (
    PYTHON,
    blob_files,
    collect_everything,
    packed_blobs,
    python_code,
    run_python,
    store_root,
    write_files,
)

CTX = "work"


def _files(prefix: str, count: int, size: int = 3000) -> dict[str, bytes]:
    return {
        f"{prefix}/f{i:04}.bin": (f"{prefix}-{i}-".encode() * size)[:size] for i in range(count)
    }


def _packs(home: Path) -> PackSet:
    return PackSet(store_root(home) / "packs")


def _pack_files(home: Path, suffix: str) -> list[Path]:
    return sorted((store_root(home) / "packs").glob(f"pack-*{suffix}"))


def _live_entries(home: Path) -> list[str]:
    """Every (not dead) pack entry's blob hash, duplicates included."""
    packs = _packs(home)
    return [
        h
        for name, entries in packs.contents().items()
        for h in entries
        if not packs.is_dead(name, h)
    ]


def _contents(bundle: object) -> dict[str, bytes]:
    paths = [Path(p) for p in bundle]  # type: ignore[attr-defined]
    return {p.name: p.read_bytes() for p in paths}


@pytest.fixture
def ctx(sqlite_home: Path) -> str:
    api.context(CTX)
    return CTX


def test_small_files_are_packed_and_read_back_verified(
    ctx: str, tmp_path: Path, sqlite_home: Path
) -> None:
    files = _files("a", 40)
    api.add(ctx, "a", write_files(tmp_path / "src", files))

    packed = packed_blobs(sqlite_home)
    assert len(packed) == 40
    assert not list((store_root(sqlite_home) / "objects").glob("??/*"))  # nothing loose
    assert len(_pack_files(sqlite_home, ".pack")) == 1
    assert len(_pack_files(sqlite_home, ".idx")) == 1
    got = _contents(api.cat(ctx, "a"))
    assert got == {Path(k).name: v for k, v in files.items()}
    assert api.verify() == []


def test_a_few_files_stay_loose_and_gc_repack_packs_them(
    ctx: str, tmp_path: Path, sqlite_home: Path
) -> None:
    api.add(ctx, "few", write_files(tmp_path / "few", _files("few", 5)))
    assert packed_blobs(sqlite_home) == {}
    loose = set(blob_files(sqlite_home))

    collect_everything()
    assert packed_blobs(sqlite_home) == {}  # plain gc leaves loose blobs alone
    from assay.bundles import maintenance

    maintenance.gc(open_workspace(), grace_seconds=0, force=True, repack=True)

    assert set(packed_blobs(sqlite_home)) == loose
    assert not list((store_root(sqlite_home) / "objects").glob("??/*"))
    assert api.verify() == []
    assert len(_contents(api.cat(ctx, "few"))) == 5


def test_a_corrupted_byte_quarantines_only_the_blob_it_covers(
    ctx: str, tmp_path: Path, sqlite_home: Path
) -> None:
    files = _files("c", 30)
    source = write_files(tmp_path / "src", files)
    api.add(ctx, "c", source)
    packs = _packs(sqlite_home)
    locations = packs.all_locations()
    victim, where = sorted(locations.items())[7]
    pack = packs.root / where.pack
    os.chmod(pack, 0o644)
    with open(pack, "r+b") as handle:
        handle.seek(where.offset + where.length // 2)
        byte = handle.read(1)
        handle.seek(where.offset + where.length // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))

    problems = api.verify()

    assert [(p.blob_hash, p.problem) for p in problems] == [(victim, "corrupted")]
    assert (store_root(sqlite_home) / "quarantine" / victim).exists()
    assert api.verify()[0].problem == "quarantined"
    # The rest of the pack stays readable (each read verified).
    store = open_workspace().store
    for blob_hash in locations:
        if blob_hash != victim:
            assert store.verify(blob_hash) is None
    # Adding the intact files again stores the victim afresh: everything verifies.
    api.add(ctx, "c", source)
    close_workspaces()
    assert api.verify() == []
    assert open_workspace().store.verify(victim) is None


def test_a_truncated_index_is_rebuilt_from_the_pack(
    ctx: str, tmp_path: Path, sqlite_home: Path
) -> None:
    files = _files("t", 25)
    api.add(ctx, "t", write_files(tmp_path / "src", files))
    index = _pack_files(sqlite_home, ".idx")[0]
    data = index.read_bytes()
    os.chmod(index, 0o644)
    index.write_bytes(data[: len(data) // 2])
    close_workspaces()

    assert len(_packs(sqlite_home).all_locations()) == 25
    assert api.verify() == []
    assert _contents(api.cat(ctx, "t")) == {Path(k).name: v for k, v in files.items()}


_KILL_WHILE_PACKING = """
import os, signal, sys
from assay import api

def progress(done, total):
    if done * 3 >= total:  # a third of the blobs are in the pack: die right here
        os.kill(os.getpid(), signal.SIGKILL)

api.add("work", "doomed", sys.argv[1], progress=progress)
print("finished")
"""


def test_killed_while_packing_then_rerun(ctx: str, tmp_path: Path, sqlite_home: Path) -> None:
    source = write_files(tmp_path / "src", _files("k", 900, 500))

    result = run_python(_KILL_WHILE_PACKING, str(source))

    assert result.returncode == -signal.SIGKILL, result.stderr
    unfinished = [
        p for p in _pack_files(sqlite_home, ".pack") if not p.with_suffix(".idx").exists()
    ]
    assert len(unfinished) == 1, "the child died before packing anything: proves nothing"
    orphans = set(packed_blobs(sqlite_home))
    assert orphans  # readers see the complete records of the unfinished pack
    assert api.get(ctx, "doomed") is None

    api.add(ctx, "doomed", source)  # the re-run
    collect_everything()

    assert api.verify() == []
    assert len(_contents(api.cat(ctx, "doomed"))) == 900
    # Nothing duplicated after gc: each blob is in exactly one pack, every pack indexed.
    contents = _packs(sqlite_home).contents()
    held = [h for entries in contents.values() for h in entries]
    assert len(held) == len(set(held)) == 900
    assert all(p.with_suffix(".idx").exists() for p in _pack_files(sqlite_home, ".pack"))


_KILL_WHILE_REPACKING = """
import os, signal
from assay.bundles import maintenance
from assay.bundles.workspace import open_workspace
from assay.store.packs import PackSet

def die(self, name):  # the new pack is finished; the old one is not yet deleted
    os.kill(os.getpid(), signal.SIGKILL)

PackSet.delete_pack = die
maintenance.gc(open_workspace(), grace_seconds=0, force=True)
print("finished")
"""


def test_killed_while_repacking_then_rerun(ctx: str, tmp_path: Path, sqlite_home: Path) -> None:
    api.add(ctx, "keep", write_files(tmp_path / "keep", _files("keep", 20)))
    source = tmp_path / "both"
    write_files(source, _files("gone", 60))
    write_files(source, _files("kept", 20))
    api.add(ctx, "mixed", source)
    api.rm(ctx, "mixed")
    api.add(ctx, "kept", tmp_path / "both" / "kept")  # shares 20 blobs with the removed one
    close_workspaces()

    result = run_python(_KILL_WHILE_REPACKING)

    assert result.returncode == -signal.SIGKILL, result.stderr
    held = _live_entries(sqlite_home)
    assert len(held) > len(set(held)), "no duplicate was written: the kill came too early"
    assert api.verify() == []

    collect_everything()  # the re-run

    assert api.verify() == []
    held = _live_entries(sqlite_home)
    assert len(held) == len(set(held)) == 40
    assert len(_contents(api.cat(ctx, "kept"))) == 20


_ADD_AND_MEET = """
import os, sys, time
from pathlib import Path
from assay import api

me, other, source = sys.argv[1], sys.argv[2], sys.argv[3]
met = []

def progress(done, total):
    if met:
        return
    Path(me).touch()  # mid-add, this process's pack open: wait for the other to be too
    deadline = time.monotonic() + 60
    while not Path(other).exists():
        if time.monotonic() > deadline:
            raise SystemExit("the other adder never got going: they waited on each other")
        time.sleep(0.005)
    met.append(True)

api.add("work", Path(source).name, source, progress=progress)
print("finished")
"""


def test_two_processes_add_at_once_each_with_its_own_pack(
    ctx: str, tmp_path: Path, sqlite_home: Path
) -> None:
    sources = [write_files(tmp_path / n, _files(n, 600, 400)) / n for n in ("one", "two")]
    marks = [tmp_path / "one.mid", tmp_path / "two.mid"]
    children = [
        subprocess.Popen(
            [PYTHON, "-c", python_code(_ADD_AND_MEET), str(marks[i]), str(marks[1 - i]), str(s)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, s in enumerate(sources)
    ]
    outputs = [c.communicate(timeout=120) for c in children]

    assert [c.returncode for c in children] == [0, 0], outputs
    assert all("finished" in out for out, _err in outputs)
    assert len(_pack_files(sqlite_home, ".idx")) == 2  # each its own pack
    assert api.verify() == []
    assert len(_contents(api.cat(ctx, "one"))) == 600
    assert len(_contents(api.cat(ctx, "two"))) == 600


_ADD_PAUSED = """
import sys, time
from pathlib import Path
from assay import api

mid, go, source = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

def progress(done, total):
    if not mid.exists():
        mid.touch()  # blobs are in the pack, rows not yet committed
        while not go.exists():
            time.sleep(0.005)

api.add("work", "slow", source, progress=progress)
print("finished")
"""

_GC = """
from assay.bundles import maintenance
from assay.bundles.workspace import open_workspace
print("removed", maintenance.gc(open_workspace(), grace_seconds=0, force=True).blobs_removed)
"""


def test_gc_during_an_add_waits_and_removes_nothing_of_it(
    ctx: str, tmp_path: Path, sqlite_home: Path
) -> None:
    source = write_files(tmp_path / "slow", _files("slow", 600, 400)) / "slow"
    mid, go = tmp_path / "mid", tmp_path / "go"
    adder = subprocess.Popen(
        [PYTHON, "-c", python_code(_ADD_PAUSED), str(mid), str(go), str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not mid.exists():
        assert adder.poll() is None and time.monotonic() < deadline, adder.communicate()
        time.sleep(0.005)
    collector = subprocess.Popen(
        [PYTHON, "-c", python_code(_GC)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with pytest.raises(subprocess.TimeoutExpired):
        collector.wait(timeout=3)  # it waits for the add's lock (it would have finished)
    go.touch()
    add_out = adder.communicate(timeout=120)
    gc_out = collector.communicate(timeout=120)

    assert adder.returncode == 0 and "finished" in add_out[0], add_out
    assert collector.returncode == 0 and "removed 0" in gc_out[0], gc_out
    assert api.verify() == []
    assert len(_contents(api.cat(ctx, "slow"))) == 600


def test_gc_rewrites_a_pack_whose_blobs_are_mostly_unreferenced(
    ctx: str, tmp_path: Path, sqlite_home: Path
) -> None:
    source = tmp_path / "src"
    write_files(source, _files("gone", 60))
    write_files(source, _files("kept", 20))
    api.add(ctx, "mixed", source)
    api.add(ctx, "kept", source / "kept")
    api.rm(ctx, "mixed")
    old = _pack_files(sqlite_home, ".pack")

    report = collect_everything()

    assert report.blobs_removed == 60
    assert not set(old) & set(_pack_files(sqlite_home, ".pack"))  # rewritten
    assert len(packed_blobs(sqlite_home)) == 20
    assert (store_root(sqlite_home) / "packs" / "dead").read_text() == ""
    assert api.verify() == []
