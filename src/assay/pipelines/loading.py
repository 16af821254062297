"""Finding a task class from text: ``module:Class`` (or Disdat's ``module.Class``)."""

from __future__ import annotations

import importlib
import os
import sys

from assay.core.errors import TaskImportFailed
from assay.pipelines.task import TaskBase


def load_task_class(reference: str) -> type[TaskBase]:
    """Import ``module:Class`` (the current directory is importable, as for ``python -m``).

    Any failure, including an exception raised while the module imports, is one
    ``TaskImportFailed`` naming the reference and the cause.
    """
    if ":" in reference:
        module_name, _, qualname = reference.partition(":")
    else:
        module_name, _, qualname = reference.rpartition(".")
    if not module_name or not qualname:
        raise TaskImportFailed(
            f"cannot read task {reference!r}: give it as module:Class (e.g. pipeline:Report)"
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the user's module: any exception it raises is the cause
        raise TaskImportFailed(
            f"cannot import module {module_name!r} for task {reference!r}: "
            f"{type(error).__name__}: {error}"
        ) from None
    target: object = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise TaskImportFailed(f"module {module_name!r} has no task {qualname!r}")
    if not (isinstance(target, type) and issubclass(target, TaskBase)):
        raise TaskImportFailed(f"{reference!r} is not a PipeTask subclass")
    return target
