"""``assay jobs start | results | get`` on a real job (sandboxed), and their errors."""

from __future__ import annotations

import json
from pathlib import Path

from compute_helpers import OCEAN_SCRIPT, add_dataset, cli, one_error_line

from assay.jobs.policies import publish


def test_start_results_get(assay_home: Path, tmp_path: Path) -> None:
    assay_home.mkdir(parents=True, exist_ok=True)
    (assay_home / "environments.yaml").write_text(
        "environments:\n  - id: box\n    isolation: sandbox\n    network: false\n"
    )
    add_dataset(tmp_path, "hospital", "notes", {"a.txt": "wind\n"})
    publish("hospital", "notes", "compute", allow_raw_algorithm=True)
    run = cli(
        "jobs",
        "start",
        "notes",
        "-c",
        "hospital",
        "--raw",
        str(OCEAN_SCRIPT),
        "--env",
        "box",
        "--custom-data",
        '{"word": "wind"}',
        "--consumer",
        "alice",
        "--json",
    )
    assert run.exit_code == 0, run.stderr
    status = run.json()
    assert status["state"] == "FINISHED" and status["results"][0]["filename"] == "summary.json"
    job_id = status["jobId"]
    listed = cli("jobs", "results", job_id[:8], "--consumer", "alice", "--json").json()
    assert [r["type"] for r in listed] == [
        "output",
        "algorithmLog",
        "configurationLog",
        "publishLog",
    ]
    got = cli("jobs", "get", job_id, "0", "--consumer", "alice")
    assert json.loads(got.stdout)["datasets"] == {"notes": {"lines": 1, "matches": 1}}
    line = one_error_line(cli("jobs", "get", job_id, "9", "--consumer", "alice"), 3)
    assert "valid indexes are 0..3" in line
    line = one_error_line(cli("jobs", "results", job_id, "--consumer", "mallory"), 9)
    assert "another consumer" in line
    line = one_error_line(
        cli(
            "jobs",
            "start",
            "notes",
            "-c",
            "hospital",
            "--raw",
            str(OCEAN_SCRIPT),
            "--env",
            "nope",
            "--consumer",
            "alice",
        ),
        3,
    )
    assert "no compute environment 'nope'" in line
    one_error_line(
        cli("jobs", "start", "notes", "-c", "hospital", "--consumer", "alice", "--env", "box"), 2
    )
