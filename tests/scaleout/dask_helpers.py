"""Helpers of the Dask tests (a module, not the conftest: test folders each have a conftest,
so ``from conftest import`` would depend on collection order)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

try:
    import distributed
except ImportError:  # the dask tests then skip visibly (needs_dask)
    distributed = None

#: Marks a test that runs on a real Dask cluster: skipped, visibly, without dask[distributed].
needs_dask = pytest.mark.skipif(distributed is None, reason="dask[distributed] is not installed")

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


def write_environments(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "environments.yaml").write_text(text)


def wait_for(path: Path, timeout: float = 60.0) -> str:
    """The text of ``path`` once a task wrote it (the event the tests synchronise on)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):  # written, not just created
        if time.monotonic() > deadline:
            pytest.fail(f"{path} was not written within {timeout} s")
        time.sleep(0.01)  # polling for the file the task writes: the file is the event
    return path.read_text()
