"""The pipeline example: runs, caches, re-runs only what a change touches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import weather_pipeline
from typer.testing import CliRunner

from assay import api
from assay.bundles.workspace import close_workspaces
from assay.cli.main import app

HERE = Path(__file__).parent
CTX = "weather"


@pytest.fixture(autouse=True)
def _assay_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "assay-home"))
    monkeypatch.delenv("ASSAY_CATALOG_URL", raising=False)
    monkeypatch.chdir(HERE)
    close_workspaces()
    api.context(CTX)
    yield
    close_workspaces()


def test_the_summary_is_made_from_the_readings_bundle():
    readings = api.add(CTX, "readings", HERE / "data" / "readings.csv")

    assert api.apply(CTX, weather_pipeline.Summary) == {"success": True, "did_work": True}

    summary = api.get(CTX, "Summary")
    assert summary.data["windiest"] == "aberdeen"
    assert summary.data["stations"]["london"] == {
        "station": "london",
        "days": 2,
        "mean_temperature_c": 8.15,
        "peak_wind_ms": 5.2,
    }
    assert Path(summary.data["report"]).read_text().splitlines() == [
        "aberdeen: 3.65 C mean, 15.1 m/s peak (gale)",
        "london: 8.15 C mean, 5.2 m/s peak",
        "plymouth: 8.93 C mean, 11.3 m/s peak",
    ]
    # Lineage: summary <- stats_* <- clean_readings <- readings (made outside the pipeline).
    clean = api.get(CTX, "clean_readings")
    assert clean.lineage.depends_on == {"raw": readings.uuid}
    assert set(summary.lineage.depends_on) == {"aberdeen", "london", "plymouth"}
    assert api.apply(CTX, weather_pipeline.Summary)["did_work"] is False


def test_a_new_parameter_reruns_only_the_summary():
    api.add(CTX, "readings", HERE / "data" / "readings.csv")
    api.apply(CTX, weather_pipeline.Summary)
    stats_before = {b.name: b.uuid for b in api.search(CTX, "stats_*")}

    runner = CliRunner()
    plan = runner.invoke(
        app,
        ["apply", "weather_pipeline:Summary", "-c", CTX, "-p", "gale_ms=10", "--dry-run", "--json"],
    )
    assert plan.exit_code == 0, plan.stderr
    actions = {
        p["bundle_name"]: (p["action"], p["reason"]) for p in json.loads(plan.stdout)["plan"]
    }
    assert actions["Summary"] == ("run", "param changed")
    assert actions["stats_london"] == ("cached", "")

    done = runner.invoke(app, ["apply", "weather_pipeline:Summary", "-c", CTX, "-p", "gale_ms=10"])
    assert done.exit_code == 0, done.stderr
    assert {b.name: b.uuid for b in api.search(CTX, "stats_*")} == stats_before
    report = Path(api.get(CTX, "Summary").data["report"]).read_text()
    assert "plymouth: 8.93 C mean, 11.3 m/s peak (gale)" in report
