"""The UI pages for pipeline runs (per-task state), environments and DataFrame previews, in
headless Chromium, at a laptop width and at a phone width (390 px: nothing wider than the
screen). Set ASSAY_UI_SCREENSHOTS=DIR to keep the screenshots (docs/img holds the committed
ones)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import ApiServer, running_server

from assay.bundles import operations
from assay.bundles.workspace import close_workspaces
from assay.jobs import store as job_store
from helpers import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
MODULE = """
import pandas
from assay.pipe import IntParameter, PipeTask


class Readings(PipeTask):
    n = IntParameter(default=30)

    def pipe_run(self):
        return pandas.DataFrame({"site": [f"s{i % 3}" for i in range(self.n)],
                                 "value": [i * 0.5 for i in range(self.n)]})


class Summary(PipeTask):
    n = IntParameter(default=30)

    def pipe_requires(self):
        self.add_dependency("readings", Readings, {"n": self.n})

    def pipe_run(self, readings=None):
        return {"rows": len(readings), "total": float(readings["value"].sum())}
"""
ENVIRONMENTS = """\
environments:
  - id: local
    max_jobs: 4
    description: this server's own processes
  - id: sandboxed
    isolation: sandbox
    network: false
    max_jobs: 2
    description: the compute-to-data slot
"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, str]]:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is not installed (apt-get install chromium)")
    pytest.importorskip("pyarrow")
    root = tmp_path_factory.mktemp("pages")
    (root / "code").mkdir()
    (root / "code" / "ui_pipes.py").write_text(textwrap.dedent(MODULE))
    (root / "home").mkdir()
    (root / "home" / "environments.yaml").write_text(ENVIRONMENTS)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(root / "code")
    os.environ["ASSAY_SERVER_PIPELINE_MODULES"] = "ui_pipes"
    try:
        with running_server(root / "home", None) as server:
            with server.client(server.writer) as client:
                client.post("/api/v1/contexts", json={"name": "lab"})
                applied = client.post(
                    "/api/v1/pipelines/apply", json={"context": "lab", "task": "ui_pipes:Summary"}
                )
                assert applied.status_code == 202, applied.text
            job_id = applied.json()["job_id"]
            done = job_store.wait_terminal(job_id, timeout=120, workspace=server.workspace)
            assert done.state == "FINISHED", done.error
            yield server, job_id
    finally:
        os.environ.pop("ASSAY_SERVER_PIPELINE_MODULES", None)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
        close_workspaces()


def _shot(page: object, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("ASSAY_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)  # type: ignore[attr-defined]


def test_runs_environments_and_frame_preview(pages: tuple[ApiServer, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    server, job_id = pages
    frame = operations.get(server.workspace, "lab", "Readings")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            for width, suffix in ((1280, ""), (390, "-phone")):
                page = browser.new_page(viewport={"width": width, "height": 844})
                page.goto(f"{server.url}/ui/login?next=/ui/pipelines")
                page.fill("input[name=token]", server.reader)
                page.click("button[type=submit]")
                page.wait_for_url(f"{server.url}/ui/pipelines")
                row = page.locator(f"a[href='/ui/pipelines/{job_id}']")
                assert row.count() == 1
                row.click()
                page.wait_for_url(f"{server.url}/ui/pipelines/{job_id}")
                assert page.locator("#run-state").inner_text() == "FINISHED"
                tasks = page.locator("#tasks tbody tr")
                assert tasks.count() == 2
                assert page.locator("#tasks td.state-finished").count() == 2
                assert page.locator("#task-states").inner_text().strip() == "FINISHED: 2"
                _shot(page, f"ui-pipeline{suffix}.png", tmp_path)
                assert page.evaluate("document.documentElement.scrollWidth") <= width

                page.goto(f"{server.url}/ui/environments")
                cells = page.locator("tbody tr td:first-child").all_inner_texts()
                assert cells == ["local", "sandboxed"]
                _shot(page, f"ui-environments{suffix}.png", tmp_path)
                assert page.evaluate("document.documentElement.scrollWidth") <= width

                page.goto(f"{server.url}/ui/bundles/{frame.uuid}")
                table = page.locator("table.frame")
                assert table.locator("thead th").all_inner_texts() == ["site", "value"]
                assert table.locator("tbody tr").count() == 20  # the first 20 of 30 rows
                assert table.locator("tbody tr").first.locator("td").all_inner_texts() == [
                    "s0",
                    "0.0",
                ]
                assert "30 rows, first 20 shown" in page.content()
                _shot(page, f"ui-bundle-frame{suffix}.png", tmp_path)
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.close()
        finally:
            browser.close()


def test_unknown_run_is_a_clear_404(pages: tuple[ApiServer, str]) -> None:
    server, _ = pages
    import httpx

    with httpx.Client(base_url=server.url, cookies={"assay_ui_token": server.reader}) as client:
        got = client.get("/ui/pipelines/ffffffffffffffff")
        assert got.status_code == 404 and "no job" in got.text
        assert client.get("/ui/environments").status_code == 200
    with httpx.Client(base_url=server.url) as anonymous:  # not logged in: sent to log in
        assert anonymous.get("/ui/pipelines").status_code == 303


QUESTION_TWINE = {
    "input_values_schema": {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    },
    "monitor_message_schema": {"type": "object", "required": ["progress"]},
}
QUESTION_APP = """
import logging

def run(analysis):
    logging.getLogger("app").info("squaring %d", analysis.input_values["n"])
    analysis.send_monitor_message({"progress": 0.5})
    if analysis.input_values["n"] < 0:
        raise ValueError("n must not be negative")
    analysis.output_values = {"square": analysis.input_values["n"] ** 2}
"""


def test_questions_pages(
    pages: tuple[ApiServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Questions asked on this machine (the local backend, same catalog) on the UI."""
    import json

    from playwright.sync_api import sync_playwright

    from assay.services import Child

    server, _ = pages
    monkeypatch.setenv("ASSAY_HOME", str(server.home))
    folder = tmp_path / "square"
    folder.mkdir()
    (folder / "app.py").write_text(QUESTION_APP)
    (folder / "twine.json").write_text(json.dumps(QUESTION_TWINE))
    (folder / "assay.yaml").write_text(
        json.dumps({"services": [{"name": "square", "namespace": "lab", "tag": "1.0.0"}]})
    )
    child = Child("lab/square:1.0.0", backend={"name": "local", "path": str(folder)})
    answer, good = child.ask(input_values={"n": 7}, timeout=60)
    assert answer["output_values"] == {"square": 49}
    failed, bad = child.ask(input_values={"n": -1}, timeout=60, raise_errors=False)
    assert isinstance(failed, ValueError)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            for width, suffix in ((1280, ""), (390, "-phone")):
                page = browser.new_page(viewport={"width": width, "height": 844})
                page.goto(f"{server.url}/ui/login?next=/ui/questions")
                page.fill("input[name=token]", server.reader)
                page.click("button[type=submit]")
                page.wait_for_url(f"{server.url}/ui/questions")
                statuses = page.locator("#questions td.status").all_inner_texts()
                assert statuses == ["failed", "succeeded"]  # newest first
                _shot(page, f"ui-questions{suffix}.png", tmp_path)
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.click(f"a[href='/ui/questions/{good}']")
                page.wait_for_url(f"{server.url}/ui/questions/{good}")
                assert page.locator("#question-status").inner_text() == "succeeded"
                assert json.loads(page.locator("#outputs").inner_text()) == {"square": 49}
                kinds = page.locator("#events tbody td:nth-child(3)").all_inner_texts()
                assert {"log_record", "monitor_message", "result"} <= set(kinds)
                assert "squaring 7" in page.locator("#events").inner_text()
                _shot(page, f"ui-question{suffix}.png", tmp_path)
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.goto(f"{server.url}/ui/questions/{bad}")
                assert "n must not be negative" in page.locator("#question-error").inner_text()
                page.goto(f"{server.url}/ui/questions?status=succeeded")
                assert page.locator("#questions td.status").all_inner_texts() == ["succeeded"]
                page.goto(f"{server.url}/ui/questions?status=bogus")
                assert "unknown status" in page.content()
                page.close()
        finally:
            browser.close()
