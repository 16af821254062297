"""The web UI in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): log in,
search with a tag filter, open a bundle, download a file, open its lineage graph, click a node.
Set ASSAY_UI_SCREENSHOTS=DIR to keep screenshots (docs/img holds the committed ones)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import ApiServer, make_graph, running_server

from assay.bundles.workspace import close_workspaces
from helpers import skip_or_fail

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, dict[str, str]]]:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is not installed (apt-get install chromium)")
    home = tmp_path_factory.mktemp("ui") / "home"
    with running_server(home, None) as server:
        uuids = make_graph(
            server.workspace,
            "lab",
            ["raw", "clean", "model-a", "model-b", "report"],
            {
                "clean": ["raw"],
                "model-a": ["clean"],
                "model-b": ["clean"],
                "report": ["model-a", "model-b"],
            },
        )
        with server.client(server.writer) as client:
            made = client.post(
                "/api/v1/contexts/lab/bundles",
                params={"name": "model-c", "filename": "weights.bin", "tag": ["stage=train"]},
                content=b"0123456789" * 100,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert made.status_code == 201, made.text
        uuids["model-c"] = made.json()["uuid"]
        yield server, uuids
    close_workspaces()


def _shot(page: object, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("ASSAY_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)  # type: ignore[attr-defined]


def test_search_open_bundle_and_lineage_graph(
    ui: tuple[ApiServer, dict[str, str]], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    server, uuids = ui
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{server.url}/ui/")
            assert "/ui/login" in page.url  # no cookie yet: sent to log in
            page.fill("input[name=token]", server.reader)
            page.click("button[type=submit]")
            page.wait_for_url(f"{server.url}/ui/")
            assert page.locator("#results tbody tr").count() == 6

            # Search by name glob and tag: htmx swaps the results and puts the query in the URL.
            page.fill("input[name=name]", "model*")
            page.locator("input[name=tag]").last.fill("stage=train")
            page.click("#search button[type=submit]")
            page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 1")
            assert "tag=stage%3Dtrain" in page.url and "name=model*" in page.url
            _shot(page, "ui-search.png", tmp_path)

            page.click("#results a:text('model-c')")
            page.wait_for_url(f"**/ui/bundles/{uuids['model-c']}")
            assert page.locator("#files tbody tr").count() == 1
            with page.expect_download() as download:
                page.click("#files a[download]")
            assert Path(download.value.path()).read_bytes() == b"0123456789" * 100
            _shot(page, "ui-bundle.png", tmp_path)

            page.goto(f"{server.url}/ui/bundles/{uuids['clean']}")
            page.click("a:text('Lineage graph')")
            page.wait_for_selector("#graph[data-ready=yes]")
            assert page.evaluate("window.assayGraph.nodes().length") == 5
            assert page.evaluate("window.assayGraph.edges().length") == 5
            assert "5 nodes" in page.inner_text("#status")
            _shot(page, "ui-lineage.png", tmp_path)
            page.evaluate(f"window.assayGraph.getElementById('bundle:{uuids['raw']}').emit('tap')")
            page.wait_for_url(f"**/ui/bundles/{uuids['raw']}")

            # A phone width: the pages still lay out (tables scroll inside their box).
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.context.add_cookies(page.context.cookies())
            phone.goto(f"{server.url}/ui/lineage?node=bundle:{uuids['clean']}&direction=up&depth=1")
            phone.wait_for_selector("#graph[data-ready=yes]")
            assert phone.evaluate("window.assayGraph.nodes().length") == 2
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390
            _shot(phone, "ui-lineage-phone.png", tmp_path)
        finally:
            browser.close()


def test_ui_login_is_required_and_safe(ui: tuple[ApiServer, dict[str, str]]) -> None:
    server, _ = ui
    with httpx.Client(base_url=server.url, follow_redirects=False) as client:
        first = client.get("/ui/bundles/x")
        assert first.status_code == 303 and first.headers["location"].startswith("/ui/login")
        bad = client.post(
            "/ui/login",
            content=b"token=assay_nope&next=/ui/",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert bad.status_code == 401 and "malformed token" in bad.text
        good = client.post(
            "/ui/login",
            content=f"token={server.reader}&next=https://evil.example/".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert good.status_code == 303 and good.headers["location"] == "/ui/"  # no open redirect
        cookie = good.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
        traversal = client.get("/ui/files/00000000-0000-4000-8000-000000000000/..%2fcatalog.db")
        assert traversal.status_code == 422


def test_watch_a_running_job_and_stop_it(
    ui: tuple[ApiServer, dict[str, str]], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from assay.jobs import store

    server, _ = ui
    workspace = server.workspace
    job_id = str(uuid.uuid4())
    store.create_job("demo", job_id, spec={"steps": 3}, owner="ada", workspace=workspace)
    store.fire(job_id, "run", workspace=workspace)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{server.url}/ui/login?next=/ui/jobs")
            page.fill("input[name=token]", server.writer)
            page.click("button[type=submit]")
            page.wait_for_url("**/ui/jobs")
            page.click(f"a[href='/ui/jobs/{job_id}']")
            page.wait_for_url(f"**/ui/jobs/{job_id}")
            assert page.inner_text("#state") == "RUNNING"
            for step in range(3):  # written while the page watches: they arrive live
                store.append_events(
                    job_id, [("log", {"message": f"step {step} done"})], workspace=workspace
                )
                page.wait_for_function(
                    f"document.getElementById('log').dataset.lines === '{step + 1}'"
                )
            assert page.inner_text("#log").splitlines() == [f"step {i} done" for i in range(3)]
            _shot(page, "ui-job.png", tmp_path)

            page.click("#stop")
            page.wait_for_url("**stop=requested")
            assert store.get_job(job_id, workspace=workspace).stop_requested
            # The job's supervisor honours the request; the page sees the transition live.
            store.fire(job_id, "stop", workspace=workspace)
            page.wait_for_function("document.getElementById('state').dataset.final === 'yes'")
            assert page.inner_text("#state") == "STOPPED"
            assert page.locator("#stop").count() == 0
            assert "STOPPED" in page.inner_text("#history")
        finally:
            browser.close()


def test_a_read_token_cannot_stop_a_job_from_the_ui(ui: tuple[ApiServer, dict[str, str]]) -> None:
    from assay.jobs import store

    server, _ = ui
    job_id = str(uuid.uuid4())
    store.create_job("demo", job_id, spec={}, workspace=server.workspace)
    with httpx.Client(base_url=server.url, follow_redirects=False) as client:
        client.post(
            "/ui/login",
            content=f"token={server.reader}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        refused = client.post(f"/ui/jobs/{job_id}/stop")
    assert refused.status_code == 403 and "insufficient_scope" in refused.text
    assert store.get_job(job_id, workspace=server.workspace).state == "CREATED"
