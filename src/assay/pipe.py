"""Disdat-shaped pipeline tasks: ``PipeTask`` and Luigi's parameter names.

A Disdat (disdat-luigi) task ports by changing its imports::

    from assay.pipe import PipeTask, IntParameter      # was: from disdatluigi.pipe import
                                                       #      PipeTask; import luigi
    class Double(PipeTask):
        n = IntParameter(default=2)

        def pipe_requires(self):
            self.add_dependency("raw", Load, {"n": self.n})

        def pipe_run(self, raw=None):
            return [2 * x for x in raw]

Run it with ``assay.api.apply(context, Double, params={"n": 3})`` or
``assay apply module:Double --param n=3``. See docs/pipelines.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay.bundle import Bundle
from assay.bundles.workspace import open_workspace
from assay.pipelines.params import (
    BoolParameter,
    DateParameter,
    DictParameter,
    FloatParameter,
    IntParameter,
    ListParameter,
    Parameter,
)
from assay.pipelines.task import TaskBase

__all__ = [
    "BoolParameter",
    "DateParameter",
    "DictParameter",
    "FloatParameter",
    "IntParameter",
    "ListParameter",
    "Parameter",
    "PipeTask",
]


class PipeTask(TaskBase):
    """A pipeline task: declare parameters, ``pipe_requires`` and ``pipe_run``.

    Methods for ``pipe_requires``: ``add_dependency(name, TaskClass, params)``,
    ``add_external_dependency(name, TaskClass_or_bundle_name, params, uuid=None, tags=None)``
    (returns the ``Bundle``), ``set_bundle_name``, ``add_tags``, ``mark_force``.
    In ``pipe_run``: ``create_output_file``, ``create_output_dir``, ``get_output_dir``,
    ``add_tags``, ``get_tags(arg)``, ``get_bundle_uuid(arg)``, ``stop_requested()``.
    """

    def add_external_dependency(  # type: ignore[override]
        self,
        param_name: str,
        pipe_class: type[TaskBase] | str | None,
        params: Mapping[str, Any] | None = None,
        human_name: str | None = None,
        uuid: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Bundle:
        """Require an existing bundle (by uuid, name, or task class and params) and return
        it; a missing one raises ``ExternalBundleNotFound`` and nothing runs."""
        record = super().add_external_dependency(
            param_name, pipe_class, params, human_name=human_name, uuid=uuid, tags=tags
        )
        return Bundle._from_record(record, open_workspace())
