"""``assay verify --repair``: quarantined or missing blobs come back from the context's remote
(real moto_server and file:// remotes); what no remote holds is named as still damaged."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from remote_helpers import Remote

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from cli_helpers import expect_error, invoke, ok

from assay.core.hashing import hash_bytes


@pytest.fixture
def lab(sqlite_home: Path) -> Path:
    ok("context", "create", "lab")
    ok("context", "switch", "lab")
    return sqlite_home


def _blob(home: Path, content: bytes) -> Path:
    blob_hash = hash_bytes(content)
    return home / "store" / "objects" / blob_hash[:2] / blob_hash[2:]


def _corrupt(path: Path) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _files(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True)
    for name, content in files.items():
        (root / name).write_bytes(content)
    return root


def test_repair_restores_from_the_remote_and_names_what_stays_damaged(
    lab: Path, remote: Remote, tmp_path: Path
) -> None:
    alpha, beta, draft = b"alpha\n" * 50, b"beta\n" * 40, b"draft only here\n"
    ok("remote", "add", "lab", remote.url, "--remote-context", "shared")
    ok("add", "data", _files(tmp_path / "data", {"a.txt": alpha, "b.txt": beta}))
    ok("commit", "data")
    ok("push")
    draft_uuid = ok("add", "draft", _files(tmp_path / "draft", {"d.txt": draft}), "--json")
    draft_uuid = draft_uuid.json()["bundle"]["uuid"]
    _corrupt(_blob(lab, alpha))
    _blob(lab, beta).unlink()
    _corrupt(_blob(lab, draft))

    run = invoke("verify", "--repair", "--json")

    expect_error(run, 5, "restored 2 blob(s)", "1 file(s) remain damaged", "draft@")
    error = run.json()["error"]
    assert error["code"] == "verification_failed"
    assert sorted(error["restored"]) == sorted([hash_bytes(alpha), hash_bytes(beta)])
    assert [(p["bundle_name"], p["problem"]) for p in error["remaining"]] == [
        ("draft", "corrupted")
    ]
    assert error["damaged_bundles"] == [f"lab/draft@{draft_uuid[:8]}"]
    assert _blob(lab, alpha).read_bytes() == alpha
    assert _blob(lab, beta).read_bytes() == beta
    assert ok("verify", "data").stdout.strip() == "all 2 files verified"
    contents = sorted(Path(p).read_bytes() for p in ok("cat", "data", "--json").json())
    assert contents == sorted([alpha, beta])
    # Text output names the damaged bundle too; the quarantined draft blob stays out.
    expect_error(invoke("verify", "--repair"), 5, "draft@")
    assert not _blob(lab, draft).exists()
    assert (lab / "store" / "quarantine" / hash_bytes(draft)).exists()


def test_repair_of_everything_exits_zero(lab: Path, remote: Remote, tmp_path: Path) -> None:
    content = b"shared content\n" * 10
    ok("remote", "add", "lab", remote.url, "--remote-context", "shared")
    ok("add", "data", _files(tmp_path / "data", {"x.txt": content}))
    ok("commit", "data")
    ok("push")
    _corrupt(_blob(lab, content))

    report = ok("verify", "-c", "lab", "--repair", "--json").json()

    assert report["restored"] == [hash_bytes(content)] and report["remaining"] == []
    assert [p["problem"] for p in report["problems"]] == ["corrupted"]
    assert ok("verify").stdout.strip() == "all 1 files verified"
    _blob(lab, content).unlink()
    assert "restored 1 blob(s) from remotes" in ok("verify", "--all", "--repair").stdout


def test_repair_without_a_remote_names_the_bundle(lab: Path, tmp_path: Path) -> None:
    ok("add", "solo", _files(tmp_path / "solo", {"s.txt": b"only copy\n"}))
    _blob(lab, b"only copy\n").unlink()
    expect_error(invoke("verify", "--repair"), 5, "restored 0 blob(s)", "lab/solo@")
