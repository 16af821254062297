"""Fixtures for managed pipeline jobs: a workspace with a registered pipeline (SQLite and
PostgreSQL, through ``assay_home``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.bundles.workspace import Workspace, open_workspace
from assay.pjobs.pipelines import Pipeline, register


@pytest.fixture
def workspace(assay_home: Path) -> Workspace:
    return open_workspace()


@pytest.fixture
def pipeline(workspace: Workspace) -> Pipeline:
    registered, created = register(
        workspace,
        {"id": "sd2e/tacobot", "name": "Taco bot", "version": "1.0", "accepts": ["*.fcs"]},
    )
    assert created
    return registered
