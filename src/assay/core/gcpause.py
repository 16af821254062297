"""Pausing Python's cyclic garbage collector around bulk work.

An add of 10,000 files allocates tens of thousands of small containers that all stay alive
until it ends; each allocation burst triggers a collection that walks every live object, which
cost a third of an unchanged re-add. Reference counting still frees everything as usual; only
the cycle detector waits until the block ends (and runs then if it is due).
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cycle collector inside the block (re-entrant: only the outermost block
    turns it back on, and only if it was on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def importing() -> Iterator[None]:
    """For imports of many modules (a command and the catalog): the cycle collector waits
    until the block ends, which then freezes every object alive (``gc.freeze``). Modules live
    as long as the process, so later collections need not walk them again: collections during
    and after an import of SQLAlchemy cost a sixth of ``assay ls``."""
    with gc_paused():
        yield
        gc.freeze()


def without_gc(function: Callable[P, R]) -> Callable[P, R]:
    """Decorate ``function`` to run with the cycle collector paused."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with gc_paused():
            return function(*args, **kwargs)

    return wrapper
