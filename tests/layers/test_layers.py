"""The layer contract (``[tool.importlinter]`` in pyproject.toml) catches what LAYERS.md forbids.

Each test copies the source tree, adds one forbidden import, and runs ``lint-imports`` on the
copy with the project's own configuration: the contract named must break, naming the import.
An unchanged copy must pass, so a break is the mutation's doing (the contract cannot pass or
fail vacuously). ``./scripts/test`` runs the same contract on the real tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("pristine")
    shutil.copytree(
        ROOT / "src" / "assay", copy / "src" / "assay", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def _tree(pristine: Path, tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(pristine, tree)
    return tree


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


def _write(tree: Path, relative: str, text: str) -> None:
    path = tree / "src" / "assay" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name != "__init__.py" and not (path.parent / "__init__.py").exists():
        (path.parent / "__init__.py").write_text("")
    with path.open("a") as handle:
        handle.write("\n" + text + "\n")


def _broken(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Names of the broken contracts (a line may end "BROKEN (1 ignored import)")."""
    return [
        line.split(" BROKEN", 1)[0]
        for line in result.stdout.splitlines()
        if line.endswith(" BROKEN") or " BROKEN (" in line
    ]


def test_the_unchanged_tree_keeps_every_contract(pristine: Path, tmp_path: Path) -> None:
    result = _lint(_tree(pristine, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("relative", "line", "contract", "named"),
    [
        (
            "core/times.py",
            "from assay.resources import Manifest",
            "Never: core imports anything above core",
            "assay.core.times -> assay.resources",
        ),
        (
            "bundles/workspace.py",
            "import distributed",
            "Never: a layer below jobs imports dask",
            "assay.bundles.workspace -> distributed",
        ),
        (
            "store/statcache.py",
            "from assay.catalog import queries",
            "Never: store imports catalog",
            "assay.store.statcache -> assay.catalog.queries",
        ),
        (
            "catalog/engine.py",
            "import assay.services.twine",
            "Never: catalog imports jobs, services or pipelines",
            "assay.catalog.engine -> assay.services.twine",
        ),
        (
            "jobs/store.py",
            "import assay.services.twine",
            "Never: jobs import services or pipelines",
            "assay.jobs.store -> assay.services.twine",
        ),
        (
            "bundles/views.py",
            "from assay.cli import output",
            "Never: a layer below the faces imports cli/ or server/",
            "assay.bundles.views -> assay.cli.output",
        ),
        (
            "server/app.py",
            "from assay.cli import output",
            "Faces never import each other",
            "assay.server.app -> assay.cli.output",
        ),
        (
            "bundles/operations.py",
            "def _late():\n    from assay.services import child",
            "Layers: each floor imports only floors below it",
            "assay.bundles.operations -> assay.services.child",
        ),
        (
            "services/twine.py",
            "def _late():\n    from assay.services import child",
            "No import cycles between the modules of one package",
            "No cycles are allowed in assay.services",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    pristine: Path, tmp_path: Path, relative: str, line: str, contract: str, named: str
) -> None:
    tree = _tree(pristine, tmp_path)
    _write(tree, relative, line)
    result = _lint(tree)
    assert result.returncode != 0
    assert any(name.startswith(contract) for name in _broken(result)), result.stdout
    assert named in result.stdout


def test_a_new_top_level_package_must_be_placed_on_a_floor(pristine: Path, tmp_path: Path) -> None:
    tree = _tree(pristine, tmp_path)
    _write(tree, "newfloor/__init__.py", "")
    result = _lint(tree)
    assert result.returncode != 0
    assert "assay.newfloor" in result.stdout
    assert "not listed as layers" in result.stdout
