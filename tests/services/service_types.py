"""Types shared by the services tests (a module with a unique name: ``conftest`` is not)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

ServiceFactory = Callable[..., Path]
