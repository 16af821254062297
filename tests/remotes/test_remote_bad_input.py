"""Bad input and failures: every one gives a clear error and loses or half-writes nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from remote_helpers import (
    Machine,
    Remote,
    free_port,
    remote_bytes,
    remote_keys,
    start_moto,
    stop_moto,
    write_remote_bytes,
)

from assay import api
from assay.core.errors import (
    BlobCorrupted,
    RemoteAccessDenied,
    RemoteExists,
    RemoteNotFound,
    RemoteObjectCorrupted,
    RemoteUnavailable,
)
from assay.store.remote import RemoteStore
from helpers import blob_files, catalog_counts, start_python, temp_files, write_files


def _push_one(context: str, root: Path, files: dict[str, str], name: str = "b") -> api.Bundle:
    write_files(root, files)
    bundle = api.add(context, name, root)
    api.commit(context, name)
    api.push(context, name)
    return bundle


# -- binding --------------------------------------------------------------------------------
def test_api_remote_rebinds_as_disdat_unless_force_is_false(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    api.remote("lab", "lab", remote.url)  # the same binding again: fine, nothing changes
    other = tmp_path / "other-drive"
    other.mkdir()

    with pytest.raises(RemoteExists) as caught:
        api.remote("lab", "elsewhere", f"file://{other}", force=False)

    assert "force=True" in str(caught.value)
    assert [c.remote for c in api.ls_contexts()] == [f"lab@{remote.url}"]
    api.remote("lab", "elsewhere", f"file://{other}")  # Disdat's api.remote re-binds
    assert [c.remote for c in api.ls_contexts()] == [f"elsewhere@file://{other}"]


def test_a_bucket_that_does_not_exist(aws_env: str, sqlite_home: Path) -> None:
    api.context("lab")
    with pytest.raises(RemoteNotFound, match="bucket 'no-such-bucket' does not exist"):
        api.remote("lab", "lab", "s3://no-such-bucket/prefix")
    assert [c.remote for c in api.ls_contexts()] == [None]


def test_a_shared_folder_that_does_not_exist(sqlite_home: Path, tmp_path: Path) -> None:
    api.context("lab")
    with pytest.raises(RemoteNotFound, match="does not exist"):
        api.remote("lab", "lab", f"file://{tmp_path}/not/mounted")
    assert [c.remote for c in api.ls_contexts()] == [None]


def test_an_unreachable_endpoint_fails_fast_with_a_clear_message(
    aws_env: str, sqlite_home: Path
) -> None:
    api.context("lab")
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(RemoteUnavailable) as caught:
        api.remote("lab", "lab", "s3://bucket/prefix", endpoint_url=dead)
    assert time.monotonic() - started < 30
    assert f"cannot reach remote s3://bucket/prefix (endpoint {dead})" in str(caught.value)
    assert [c.remote for c in api.ls_contexts()] == [None]


def test_a_server_that_never_answers_times_out_instead_of_hanging(
    aws_env: str, sqlite_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_REMOTE_READ_TIMEOUT", "1")
    monkeypatch.setenv("ASSAY_REMOTE_RETRIES", "2")
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        store = RemoteStore("s3://bucket/prefix", {"endpoint_url": endpoint})
        started = time.monotonic()
        with pytest.raises(RemoteUnavailable, match="2 tries, 5 s connect and 1 s read"):
            store.write_new("contexts/x/index/a.json", b"{}")  # a PUT: no 100-continue wait
        with pytest.raises(RemoteUnavailable):
            store.read("contexts/x/index/a.json")
        assert time.monotonic() - started < 30


def test_wrong_credentials(sqlite_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})  # checks every signature
    if server is None:
        pytest.skip("moto_server with authentication could not be started")
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        api.context("lab")
        with pytest.raises(RemoteAccessDenied, match="check the credentials"):
            api.remote("lab", "lab", "s3://bucket/prefix", endpoint_url=server.endpoint)
        assert [c.remote for c in api.ls_contexts()] == [None]
    finally:
        stop_moto(server)


# -- corrupted or truncated remote objects --------------------------------------------------
@pytest.mark.parametrize("damage", ["corrupted", "truncated"])
def test_a_damaged_remote_blob_is_refused_on_localize_and_nothing_local_changes(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path, damage: str
) -> None:
    a, b = machines
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        bundle = _push_one("lab", tmp_path / "d", {"good.txt": "good", "bad.txt": "x" * 4096})
    bad = next(f.blob_hash for f in bundle.files if f.path == "bad.txt")
    key = f"objects/{bad[:2]}/{bad[2:]}"
    original = remote_bytes(remote, key)
    assert original is not None
    write_remote_bytes(
        remote, key, original[:100] if damage == "truncated" else b"y" + original[1:]
    )
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        api.pull("lab")
        rows = catalog_counts()
        with pytest.raises(RemoteObjectCorrupted) as caught:
            api.localize("lab", "b")
        assert "corrupted or truncated" in str(caught.value)
        assert "nothing local was changed" in str(caught.value)
        assert bad not in blob_files(b.home)
        assert temp_files(b.home) == []
        assert catalog_counts() == rows
        assert not api.get("lab", "b").localized
        write_remote_bytes(remote, key, original)  # repaired remote: localize works
        api.localize("lab", "b")
        assert api.get("lab", "b").localized


def test_a_corrupted_bundle_record_is_refused_on_pull(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        bundle = _push_one("lab", tmp_path / "d", {"f.txt": "data"})
    key = f"contexts/lab/bundles/{bundle.uuid}.json"
    record = json.loads(remote_bytes(remote, key) or b"")
    record["files"][0][2] = 999  # a size that does not match the content hash
    write_remote_bytes(remote, key, json.dumps(record).encode())
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        before = catalog_counts()
        with pytest.raises(RemoteObjectCorrupted, match="content hash does not match"):
            api.pull("lab")
        assert catalog_counts() == before
        write_remote_bytes(remote, key, b'{"format": "assay.bundle/1", "uuid"')  # truncated
        with pytest.raises(RemoteObjectCorrupted, match="corrupted or truncated"):
            api.pull("lab")
        assert catalog_counts() == before


@pytest.mark.parametrize("size", [8, 17 * 2**20], ids=["small", "multipart"])
def test_a_corrupted_local_blob_is_never_pushed(
    sqlite_home: Path, remote: Remote, tmp_path: Path, size: int
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.bin").write_bytes(os.urandom(size))
    bundle = api.add("lab", "b", tmp_path / "d")
    api.commit("lab", "b")
    blob = blob_files(sqlite_home)[bundle.files[0].blob_hash]
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as handle:  # same size, one byte flipped
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))

    with pytest.raises(BlobCorrupted, match="nothing of it was pushed"):
        api.push("lab")

    assert remote_keys(remote) == []


# -- interrupted push -----------------------------------------------------------------------
_PUSH_SCRIPT = """
from assay import api
api.push("lab")
"""


def test_a_killed_push_is_never_listed_and_the_next_push_resumes(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    count = 400 if remote.kind == "s3" else 1500  # enough to be caught mid-push
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        write_files(tmp_path / "many", {f"f{i:04}.bin": os.urandom(2048) for i in range(count)})
        bundle = api.add("lab", "many", tmp_path / "many")
        api.commit("lab", "many")
    # One blob per request (packing off), so a kill lands between blobs; a kill during a
    # pack push is tested in test_remote_pack_faults.py.
    env = {**os.environ, **a.env(), "ASSAY_REMOTE_JOBS": "1", "ASSAY_PACK_THRESHOLD": "0"}
    child = start_python(_PUSH_SCRIPT, env=env)
    try:
        deadline = time.monotonic() + 60
        while len(remote_keys(remote, "objects")) < 20 and time.monotonic() < deadline:
            assert child.poll() is None, child.communicate()
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    uploaded = len(remote_keys(remote, "objects"))
    assert 0 < uploaded < count, "the push finished before it could be interrupted"
    assert remote_keys(remote, "contexts/lab/index") == []  # nothing listed
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        assert api.pull("lab").pulled == ()  # B sees no half-pushed bundle
    with a.active():
        report = api.push("lab")
        assert report.pushed == (bundle.uuid,)
        assert report.blobs_already_there >= uploaded - 1  # resumed (one may have been mid-write)
        assert report.blobs_uploaded + report.blobs_already_there == count
    with b.active():
        assert api.pull("lab", localize=True).pulled == (bundle.uuid,)
        got = api.get("lab", "many")
        assert got is not None and got.content_hash == bundle.content_hash and got.localized


# -- conditional writes ---------------------------------------------------------------------
def test_no_clobber_creates_keep_the_first_writer(remote: Remote) -> None:
    store = RemoteStore(remote.url)
    assert store.conditional_writes == ("if-none-match" if remote.kind == "s3" else "link")
    assert store.write_new("contexts/c/bundles/u.json", b"first") is True
    assert store.write_new("contexts/c/bundles/u.json", b"second") is False
    assert remote_bytes(remote, "contexts/c/bundles/u.json") == b"first"
