"""Compute tests: executors made by a test are closed after it (their jobs end first)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assay.computejobs.lifecycle import close_executors


@pytest.fixture(autouse=True)
def _close_executors() -> Iterator[None]:
    yield
    close_executors(wait=True, timeout=30)
