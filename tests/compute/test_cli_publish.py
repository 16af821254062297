"""``assay publish`` and ``assay services show``: pinned code hashes, errors that write nothing."""

from __future__ import annotations

from pathlib import Path

from compute_helpers import add_dataset, cli, make_service, one_error_line

from assay.jobs.policies import get_policy, list_policies


def test_trust_pins_the_code_hash_services_show_prints(assay_home: Path, tmp_path: Path) -> None:
    add_dataset(tmp_path, "hospital", "scans", {"a.txt": "1\n"})
    make_service(tmp_path / "services")
    shown = cli("services", "show", "lab/counter:1.0.0", "--json")
    assert shown.exit_code == 0, shown.stderr
    code_hash = shown.json()["code_hash"]
    assert len(code_hash) == 64
    human = cli("services", "show", "lab/counter")
    assert code_hash in human.stdout and "lab/counter:1.0.0" in human.stdout

    run = cli(
        "publish",
        "scans",
        "-c",
        "hospital",
        "--access",
        "compute",
        "--trust",
        "lab/counter:1.0.0",
        "--trust-publisher",
        "lab",
    )
    assert run.exit_code == 0, run.stderr
    assert f"trusts lab/counter:1.0.0 with code hash {code_hash}" in run.stdout
    policy = get_policy("hospital", "scans")
    assert policy.access == "compute" and policy.trusted_publishers == ("lab",)
    assert [(t.id, t.code_hash) for t in policy.trusted_algorithms] == [
        ("lab/counter:1.0.0", code_hash)
    ]
    pinned = "ab" * 32
    as_json = cli(
        "publish",
        "scans",
        "-c",
        "hospital",
        "--access",
        "compute",
        "--trust",
        f"other/algo:2@{pinned}",
        "--json",
    ).json()
    assert as_json["trusted_algorithms"] == [{"id": "other/algo:2", "code_hash": pinned}]


def test_publish_errors_write_nothing(assay_home: Path, tmp_path: Path) -> None:
    add_dataset(tmp_path, "hospital", "scans", {"a.txt": "1\n"})
    line = one_error_line(cli("publish", "nope", "-c", "hospital", "--access", "compute"), 3)
    assert "no bundle named 'nope'" in line
    line = one_error_line(
        cli("publish", "scans", "-c", "hospital", "--access", "compute", "--trust", "x/y:1"), 3
    )
    assert "service x/y:1 is not registered" in line
    line = one_error_line(
        cli("publish", "scans", "-c", "hospital", "--access", "compute", "--trust", "x/y:1@zz"),
        2,
    )
    assert "not a code hash" in line
    line = one_error_line(
        cli("publish", "scans", "-c", "hospital", "--access", "download", "--allow-raw-algorithm"),
        2,
    )
    assert "apply to --access compute" in line
    assert list_policies() == []
    one_error_line(cli("services", "show", "x/y:1"), 3)
