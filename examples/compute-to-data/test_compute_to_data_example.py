"""The example algorithm, unchanged, run by real ``assay`` processes on a compute-only
dataset in the bubblewrap sandbox."""

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ASSAY = [sys.executable, "-m", "assay.cli.main"]


def _assay(env, *args):
    done = subprocess.run([*ASSAY, *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_ocean_style_script_runs_unchanged(tmp_path):
    home = tmp_path / "assay-home"
    home.mkdir()
    (home / "environments.yaml").write_text(
        "environments:\n  - id: box\n    isolation: sandbox\n    network: false\n"
    )
    data = tmp_path / "notes"
    data.mkdir()
    (data / "a.txt").write_text("wind\ncalm\nwind\n")
    env = {**os.environ, "ASSAY_HOME": str(home)}
    env.pop("ASSAY_CATALOG_URL", None)
    _assay(env, "context", "create", "hospital")
    _assay(env, "add", "notes", str(data), "-c", "hospital")
    _assay(
        env, "publish", "notes", "-c", "hospital", "--access", "compute", "--allow-raw-algorithm"
    )
    status = json.loads(
        _assay(
            env,
            "jobs",
            "start",
            "notes",
            "-c",
            "hospital",
            "--raw",
            str(HERE / "ocean_style_algorithm.py"),
            "--env",
            "box",
            "--custom-data",
            '{"word": "wind"}',
            "--json",
        )
    )
    assert status["state"] == "FINISHED"
    summary = json.loads(_assay(env, "jobs", "get", status["jobId"], "0"))
    assert summary == {"word": "wind", "datasets": {"notes": {"lines": 3, "matches": 2}}}
