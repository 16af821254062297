"""Packs on remotes: small blobs travel as a few pack objects plus immutable indexes (real
moto_server and file:// remotes, two machines)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from remote_helpers import Machine, Remote, remote_bytes, remote_keys, write_remote_bytes

from assay import api
from assay.bundle import Bundle
from assay.core.hashing import hash_bytes
from assay.store.packs import decode_index
from assay.store.remote import RemoteStore
from assay.store.remote_packs import GAP_BYTES, SPAN_BYTES, RemoteLocation, Span, plan_spans
from helpers import write_files

ASSAY = str(Path(sys.executable).with_name("assay"))


def small_files(count: int, prefix: str = "f", size: int = 2000) -> dict[str, bytes]:
    return {f"{prefix}{i:04}.bin": os.urandom(size) for i in range(count)}


def committed(context: str, name: str, root: Path, files: dict[str, bytes]) -> Bundle:
    write_files(root, files)
    bundle = api.add(context, name, root)
    api.commit(context, name)
    return bundle


def pack_names(remote: Remote) -> tuple[list[str], list[str]]:
    keys = remote_keys(remote, "packs")
    packs = sorted(k[len("packs/") : -len(".pack")] for k in keys if k.endswith(".pack"))
    indexes = sorted(k[len("packs/") : -len(".idx")] for k in keys if k.endswith(".idx"))
    return packs, indexes


def index_of(remote: Remote, name: str) -> dict[str, tuple[int, int]]:
    entries = decode_index(remote_bytes(remote, f"packs/{name}.idx") or b"")
    assert entries is not None
    return entries


def bind(machine: Machine, remote: Remote) -> None:
    with machine.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)


def loose_blobs(remote: Remote) -> list[str]:
    return [k for k in remote_keys(remote, "objects") if k.startswith("objects/")]


# -- layout and round trip ------------------------------------------------------------------
def test_small_files_travel_as_a_pack_and_large_ones_loose(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    bind(a, remote)
    files = {**small_files(200), "big.bin": os.urandom(100_000)}
    with a.active():
        bundle = committed("lab", "mixed", tmp_path / "mixed", files)
        report = api.push("lab")
    assert (report.blobs_uploaded, report.bytes_uploaded) == (201, sum(map(len, files.values())))
    packs, indexes = pack_names(remote)
    assert len(packs) == 1 and packs == indexes  # one pack, with its index
    entries = index_of(remote, packs[0])
    assert set(entries) == {hash_bytes(files[f"f{i:04}.bin"]) for i in range(200)}
    pack = remote_bytes(remote, f"packs/{packs[0]}.pack") or b""
    for blob_hash, (offset, length) in entries.items():  # the index points at the bytes
        assert hash_bytes(pack[offset : offset + length]) == blob_hash
    big = hash_bytes(files["big.bin"])
    assert loose_blobs(remote) == [f"objects/{big[:2]}/{big[2:]}"]

    bind(b, remote)
    with b.active():
        pulled = api.pull("lab", localize=True)
        assert pulled.pulled == (bundle.uuid,)
        got = api.get("lab", "mixed")
        assert got is not None and got.localized
        by_name = {Path(p).name: Path(p).read_bytes() for p in got.data}
        assert by_name == files
        # Pulled small blobs went into a local pack (many of them), each verified.
        assert list((b.home / "store" / "packs").glob("*.pack"))
        assert api.verify() == []


def test_a_push_does_not_resend_blobs_already_in_a_remote_pack(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    first = small_files(100)
    committed("lab", "first", tmp_path / "one", first)
    api.push("lab")
    more = {**dict(list(first.items())[:60]), **small_files(20, "g")}
    committed("lab", "second", tmp_path / "two", more)

    report = api.push("lab")

    assert (report.blobs_uploaded, report.blobs_already_there) == (20, 60)
    packs, indexes = pack_names(remote)
    assert len(packs) == 2 and packs == indexes
    # A few new small blobs (under 16) go loose: a pack per one-file push would cost more.
    committed("lab", "third", tmp_path / "three", {"only.txt": b"only one new file"})
    third = api.push("lab")
    assert (third.blobs_uploaded, len(pack_names(remote)[0])) == (1, 2)
    assert len(loose_blobs(remote)) == 1


def test_a_remote_written_before_packs_keeps_working_and_mixes_with_packs(
    machines: tuple[Machine, Machine],
    remote: Remote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = machines
    bind(a, remote)
    old_files, new_files = small_files(40, "old"), small_files(40, "new")
    with a.active():
        monkeypatch.setenv("ASSAY_PACK_THRESHOLD", "0")  # as releases before packs pushed
        old = committed("lab", "old", tmp_path / "old", old_files)
        api.push("lab")
        assert pack_names(remote) == ([], []) and len(loose_blobs(remote)) == 40
        monkeypatch.delenv("ASSAY_PACK_THRESHOLD")
    with a.active():
        new = committed("lab", "new", tmp_path / "new", {**new_files, **old_files})
        report = api.push("lab")
        assert (report.blobs_uploaded, report.blobs_already_there) == (40, 40)
        assert len(pack_names(remote)[1]) == 1
    bind(b, remote)
    with b.active():
        api.pull("lab", localize=True)
        for bundle, files in ((old, old_files), (new, {**new_files, **old_files})):
            got = api.get("lab", uuid=bundle.uuid)
            assert got is not None
            assert {Path(p).name: Path(p).read_bytes() for p in got.data} == files


# -- reading by ranges ----------------------------------------------------------------------
def test_ranges_are_coalesced_per_pack_and_one_blob_is_its_own_range() -> None:
    one = plan_spans({"a" * 64: RemoteLocation("p", 5000, 300)})
    assert one == [Span("p", 5000, 300, (("a" * 64, 5000, 300),))]

    near = {
        "a": RemoteLocation("p", 100, 10),
        "b": RemoteLocation("p", 150, 10),  # small gap: read through
        "c": RemoteLocation("p", 150 + GAP_BYTES + 100, 10),  # large gap: a new range
        "d": RemoteLocation("q", 0, 5),
    }
    spans = plan_spans(near)
    assert [(s.pack, s.start, s.length) for s in spans] == [
        ("p", 100, 60),
        ("p", 150 + GAP_BYTES + 100, 10),
        ("q", 0, 5),
    ]
    whole = {f"h{i}": RemoteLocation("p", i * (1 << 20), 1 << 20) for i in range(20)}
    spans = plan_spans(whole)
    assert all(s.length <= SPAN_BYTES for s in spans)
    assert sum(s.length for s in spans) == 20 << 20 and len(spans) == 3


def test_pulling_one_small_file_from_a_pack(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    bind(a, remote)
    files = small_files(50)
    chosen = files["f0030.bin"]
    with a.active():
        committed("lab", "many", tmp_path / "many", files)
        api.push("lab")
        single = committed("lab", "single", tmp_path / "single", {"one.bin": chosen})
        assert api.push("lab", "single").blobs_already_there == 1  # it is in the pack
    bind(b, remote)
    with b.active():
        report = api.pull("lab", "single", localize=True)
        assert report.pulled == (single.uuid,) and report.bytes_downloaded == len(chosen)
        got = api.get("lab", "single")
        assert got is not None and Path(got.data[0]).read_bytes() == chosen
        store = RemoteStore(remote.url)
        store.packs.refresh()
        location = store.packs.locate(hash_bytes(chosen))
        assert location is not None and location.length == len(chosen)
        assert plan_spans({hash_bytes(chosen): location})[0].length == len(chosen)


# -- faults ---------------------------------------------------------------------------------
def _flip_byte(remote: Remote, key: str, at: int) -> None:
    data = bytearray(remote_bytes(remote, key) or b"")
    data[at] ^= 0xFF
    if remote.kind == "file":
        path = Path(remote.url.removeprefix("file://")) / key
        os.chmod(path, 0o644)
    write_remote_bytes(remote, key, bytes(data))


def _cli(machine: Machine, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **machine.env()}
    return subprocess.run(
        [ASSAY, *args], env=env, capture_output=True, text=True, check=False, timeout=120
    )


def test_a_corrupted_byte_in_a_remote_pack_refuses_only_the_blobs_it_covers(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    bind(a, remote)
    first, second = small_files(30, "a"), small_files(30, "b")
    with a.active():
        committed("lab", "first", tmp_path / "first", first)
        committed("lab", "second", tmp_path / "second", second)
        api.push("lab")  # both bundles' blobs in one pack
    packs, _ = pack_names(remote)
    assert len(packs) == 1
    victim = hash_bytes(first["a0007.bin"])
    offset, length = index_of(remote, packs[0])[victim]
    _flip_byte(remote, f"packs/{packs[0]}.pack", offset + length // 2)

    bind(b, remote)
    with b.active():
        api.pull("lab")
    run = _cli(b, "localize", "first", "-c", "lab")
    assert run.returncode == 5, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert "1 blob(s)" in lines[0] and victim[:12] in lines[0] and "refused" in lines[0]
    with b.active():
        stored = api.get("lab", "first")
        assert stored is not None
        # Every other blob of the pack arrived and is intact; only the victim is absent.
        from assay.bundles.workspace import open_workspace

        store = open_workspace().store
        have = store.existing({hash_bytes(c) for c in first.values()})
        assert have == {hash_bytes(c) for c in first.values()} - {victim}
        assert all(store.verify(h) is None for h in have)
    ok = _cli(b, "localize", "second", "-c", "lab")
    assert ok.returncode == 0, ok.stderr
    with b.active():
        got = api.get("lab", "second")
        assert got is not None and got.localized
        assert {Path(p).name: Path(p).read_bytes() for p in got.data} == second


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_remote_index_is_detected_and_the_pack_is_scanned(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path, damage: str
) -> None:
    a, b = machines
    bind(a, remote)
    files = small_files(40)
    with a.active():
        committed("lab", "data", tmp_path / "data", files)
        api.push("lab")
    name = pack_names(remote)[0][0]
    key = f"packs/{name}.idx"
    raw = remote_bytes(remote, key) or b""
    if damage == "truncated":
        write_remote_bytes(remote, key, raw[: len(raw) // 2])
    else:
        _flip_byte(remote, key, 20)
    assert decode_index(remote_bytes(remote, key) or b"") is None  # the checksum catches it

    bind(b, remote)
    with b.active():
        api.pull("lab", localize=True)
        got = api.get("lab", "data")
        assert got is not None and got.localized
        assert {Path(p).name: Path(p).read_bytes() for p in got.data} == files


def test_verify_repair_restores_a_blob_from_a_remote_pack(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    files = small_files(30)
    bundle = committed("lab", "data", tmp_path / "data", files)
    api.push("lab")
    from assay.bundles.workspace import open_workspace

    store = open_workspace().store
    lost = hash_bytes(files["f0003.bin"])
    store.remove(lost)  # gone from the local pack (dead entry)
    assert store.verify(lost) == "missing"

    run = _cli(Machine("A", sqlite_home, None), "verify", "-c", "lab", "--repair")

    assert run.returncode == 0, run.stdout + run.stderr
    assert store.verify(lost) is None
    got = api.get("lab", uuid=bundle.uuid)
    assert got is not None
    assert {Path(p).name: Path(p).read_bytes() for p in got.data} == files


def test_rm_remote_leaves_packed_blobs_readable_for_other_bundles(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    bind(a, remote)
    shared = small_files(20, "s")
    with a.active():
        committed("lab", "gone", tmp_path / "gone", {**shared, **small_files(20, "x")})
        api.push("lab")
        keep = committed("lab", "kept", tmp_path / "kept", dict(list(shared.items())[:5]))
        api.push("lab")
        removal = api.rm_remote("lab", "gone")
    assert removal.blobs_deleted == 0  # packed bytes stay until a remote repack (not built)
    bind(b, remote)
    with b.active():
        assert api.pull("lab", localize=True).pulled == (keep.uuid,)
        got = api.get("lab", "kept")
        assert got is not None and got.localized


def test_a_corrupted_local_blob_is_never_packed_for_the_remote(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    from assay.bundles.workspace import open_workspace
    from assay.core.errors import BlobCorrupted

    api.context("lab")
    api.remote("lab", "lab", remote.url)
    files = small_files(40)
    committed("lab", "data", tmp_path / "data", files)
    victim = hash_bytes(files["f0020.bin"])
    packs = open_workspace().store.packs
    location = packs.locate(victim)
    assert location is not None  # the add packed it locally
    path = packs.root / location.pack
    os.chmod(path, 0o644)
    with open(path, "r+b") as handle:
        handle.seek(location.offset)
        first = handle.read(1)
        handle.seek(location.offset)
        handle.write(bytes([first[0] ^ 0xFF]))

    with pytest.raises(BlobCorrupted, match="nothing of it was pushed"):
        api.push("lab")

    assert remote_keys(remote, "contexts") == []  # no record, no index segment
    assert victim not in RemoteStore(remote.url).existing_blobs({victim})
