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


def test_interrupting_jobs_start_stops_the_job(tmp_path):
    import signal
    import time

    home = tmp_path / "assay-home"
    home.mkdir()
    data = tmp_path / "notes"
    data.mkdir()
    (data / "a.txt").write_text("wind\n")
    script = tmp_path / "slow.py"
    script.write_text(
        "import os, time\n"
        "open(os.path.join(os.environ['OUTPUTS'], 'started'), 'w').close()\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "ASSAY_HOME": str(home)}
    env.pop("ASSAY_CATALOG_URL", None)
    _assay(env, "context", "create", "lab")
    _assay(env, "add", "notes", str(data), "-c", "lab")
    with subprocess.Popen(
        [*ASSAY, "jobs", "start", "notes", "-c", "lab", "--raw", str(script), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        deadline = time.monotonic() + 60
        while not list(home.glob("compute-jobs/*/outputs/started")):  # the algorithm runs
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    listed = json.loads(_assay(env, "jobs", "ls", "--json"))
    assert [job["state"] for job in listed] == ["STOPPED"]
