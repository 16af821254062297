"""Fixtures for the services tests: service folders written on the fly, an isolated home."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_types import ServiceFactory

from assay.services import registry


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ASSAY_SERVICES_PATH", raising=False)
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.fixture
def make_service(tmp_path: Path) -> ServiceFactory:
    """Write a service folder: ``make_service(name, app, twine=None, **config)``."""

    def make(
        name: str,
        app: str,
        twine: dict[str, Any] | str | None = None,
        namespace: str = "test",
        tag: str = "1.0.0",
        **config: Any,
    ) -> Path:
        folder = tmp_path / "services" / name
        folder.mkdir(parents=True)
        (folder / "app.py").write_text(textwrap.dedent(app).strip() + "\n")
        text = twine if isinstance(twine, str) else json.dumps(twine or {})
        (folder / "twine.json").write_text(text)
        service = {"name": name, "namespace": namespace, "tag": tag, **config}
        (folder / "assay.yaml").write_text(json.dumps({"services": [service]}))
        return folder

    return make
