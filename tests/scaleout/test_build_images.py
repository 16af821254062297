"""``assay init service`` writes a Dockerfile; ``assay build`` needs docker or podman and says
so in one line when neither is installed (this machine has none)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli.main import app
from assay.services.images import dockerfile_text


def test_init_service_writes_a_dockerfile(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["init", "service", "counter", "--path", str(tmp_path / "counter"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "Dockerfile" in json.loads(result.output)["files"]
    text = (tmp_path / "counter" / "Dockerfile").read_text()
    assert text == dockerfile_text("counter", kind="service")
    lines = text.splitlines()
    assert lines[1] == "FROM python:3.11-slim"
    assert 'RUN pip install --no-cache-dir "$ASSAY_SPEC" "dask[distributed]"' in lines
    assert "COPY . /app" in lines and "ENV PYTHONPATH=/app" in lines
    assert any(line.startswith("CMD ") and "dask worker" in line for line in lines)
    assert "--resources" in text and "ASSAY_SCHEDULER" in text
    assert "ASSAY_CATALOG_URL" not in text.split("CMD")[0].replace("# ", "")  # no secrets baked


def test_build_without_an_engine_is_one_line_and_keeps_the_dockerfile(tmp_path: Path) -> None:
    pipeline = tmp_path / "mypipe"
    pipeline.mkdir()
    (pipeline / "tasks.py").write_text("X = 1\n")
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    os.symlink(shutil.which("sh") or "/bin/sh", empty_bin / "sh")
    result = CliRunner().invoke(
        app,
        ["build", str(pipeline / "tasks.py"), "--tag", "me/pipe:1"],
        env={"PATH": str(empty_bin)},
    )
    assert result.exit_code == 6
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no container engine found")
    assert "docker or podman" in lines[0]
    text = (pipeline / "Dockerfile").read_text()
    assert text == dockerfile_text("tasks", kind="pipeline")
    assert (pipeline / "tasks.py").read_text() == "X = 1\n"  # the folder is otherwise untouched
    # an existing Dockerfile is never overwritten
    (pipeline / "Dockerfile").write_text("FROM scratch\n")
    again = CliRunner().invoke(app, ["build", str(pipeline)], env={"PATH": str(empty_bin)})
    assert again.exit_code == 6
    assert (pipeline / "Dockerfile").read_text() == "FROM scratch\n"


def test_build_of_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", str(tmp_path / "nope")])
    assert result.exit_code == 3
    assert result.output.strip().startswith("error: ") and "no such service folder" in result.output


def test_an_engine_without_its_daemon_is_one_line(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode == 0:
        pytest.skip("needs a docker client whose daemon is not running (as on the CI machine)")
    (tmp_path / "svc").mkdir()
    result = CliRunner().invoke(app, ["build", str(tmp_path / "svc")])
    assert result.exit_code == 6
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "docker is installed but cannot build here" in lines[0]
