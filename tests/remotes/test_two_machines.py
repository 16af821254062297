"""Two machines (two ASSAY_HOMEs and catalogs) sharing one remote, pushing at the same time."""

from __future__ import annotations

import os
from pathlib import Path

from remote_helpers import Machine, Remote, remote_keys

from assay import api
from assay.core.hashing import hash_bytes
from assay.store.remote import RemoteStore
from helpers import WAIT_FOR_START, start_python, start_time, write_files

_PUSH_AT_START = (
    WAIT_FOR_START
    + """
from assay import api
report = api.push("lab")
print(",".join(report.pushed))
"""
)


def _setup(machine: Machine, remote: Remote, root: Path, files: dict[str, str], name: str) -> str:
    with machine.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        write_files(root, files)
        bundle = api.add("lab", name, root)
        api.commit("lab", name)
        return bundle.uuid


def _push_together(*machines: Machine) -> list[str]:
    when = start_time(2.0)
    children = [start_python(_PUSH_AT_START, when, env={**os.environ, **m.env()}) for m in machines]
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_concurrent_pushes_of_different_bundles_lose_nothing(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    shared = {f"common{i}.txt": f"common {i}" for i in range(30)}
    uuid_a = _setup(a, remote, tmp_path / "a", {**shared, "a.txt": "from A"}, "from-a")
    uuid_b = _setup(b, remote, tmp_path / "b", {**shared, "b.txt": "from B"}, "from-b")

    assert _push_together(a, b) == [uuid_a, uuid_b]

    # The remote holds every blob (the shared ones may be in both machines' packs: harmless).
    every = {hash_bytes(c.encode()) for c in [*shared.values(), "from A", "from B"]}
    assert RemoteStore(remote.url).existing_blobs(every) == every
    assert len(remote_keys(remote, "contexts/lab/index")) == 2
    with a.active():
        assert api.pull("lab", localize=True).pulled == (uuid_b,)
        assert (
            Path(next(p for p in api.cat("lab", "from-b") if p.endswith("b.txt"))).read_text()
            == "from B"
        )
    with b.active():
        assert api.pull("lab", localize=True).pulled == (uuid_a,)
        assert {x.name for x in api.search("lab")} == {"from-a", "from-b"}


def test_both_machines_pushing_the_same_bundle_store_it_once(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    uuid = _setup(a, remote, tmp_path / "a", {"x.txt": "x", "y.txt": "y"}, "data")
    with a.active():
        api.push("lab")
        content_hash = api.get("lab", "data").content_hash
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        api.pull("lab", localize=True)
    # Both now push it again at once (A already did, B holds the same uuid).
    with a.active():
        api.rm_remote("lab", "data")  # start from a remote without it
    _push_together(a, b)

    records = remote_keys(remote, "contexts/lab/bundles")
    assert records == [f"contexts/lab/bundles/{uuid}.json"]
    assert len(remote_keys(remote, "objects")) == 2
    with b.active():
        report = api.pull("lab")
        assert report.pulled == () and report.already_here == (uuid,)
    c = Machine("C", tmp_path / "home-c", b.catalog_url)
    if c.catalog_url is None:
        with c.active():
            api.context("lab")
            api.remote("lab", "lab", remote.url)
            assert api.pull("lab", localize=True).pulled == (uuid,)
            assert api.get("lab", "data").content_hash == content_hash
