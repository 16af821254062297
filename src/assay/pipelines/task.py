"""The task base class: parameters, declared requirements, output files, and the run hook.

A task class declares parameters as class attributes (``assay.pipelines.params``). An instance
is made with keyword arguments, checked at once: an unknown name, a missing required parameter
or a value of the wrong type raises ``InvalidParameter``. Then:

- ``pipe_requires()`` runs once, while the pipeline is planned. It declares upstream tasks
  (``add_dependency``) and existing bundles (``add_external_dependency``, resolved at once),
  and may name the output bundle (``set_bundle_name``), tag it (``add_tags``) or force the
  task to re-run (``mark_force``).
- ``pipe_run(**inputs)`` runs only when the task's output is not cached. It receives each
  upstream output by argument name, as it was saved, and returns the data of its output
  bundle; files it writes through ``create_output_file`` / ``create_output_dir`` belong to
  that bundle.

The planner and executor talk to a task through the ``_assay_*`` attributes only, so user
parameters and helper methods cannot collide with them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from assay.bundles.presentation import FileTarget, safe_bundle_path
from assay.core.errors import InvalidParameter, InvalidPipeline
from assay.core.names import bundle_tags, check_bundle_name
from assay.core.records import BundleRecord
from assay.pipelines.codehash import code_hash
from assay.pipelines.keys import signature
from assay.pipelines.params import Parameter


@dataclass(frozen=True)
class TaskDependency:
    arg_name: str
    task: TaskBase


@dataclass(frozen=True)
class ExternalInput:
    arg_name: str
    record: BundleRecord


class PlanningScope:
    """What ``pipe_requires`` may use: the lookup of external bundles (set by the planner)."""

    def find_external(
        self,
        task: TaskBase,
        target: type[TaskBase] | str | None,
        params: Mapping[str, Any] | None,
        human_name: str | None,
        uuid: str | None,
        tags: Mapping[str, Any] | None,
    ) -> BundleRecord:
        raise NotImplementedError


class OutputFolder:
    """Where a running task writes its output files (the staging folder of its bundle)."""

    def __init__(self, root: Path, claim: Callable[[], None] | None = None) -> None:
        self._root = root
        self._claim = claim  # makes and locks the folder, on first use

    @property
    def root(self) -> Path:
        if self._claim is not None:
            claim, self._claim = self._claim, None
            claim()
        return self._root

    def file(self, name: str) -> FileTarget:
        relative = safe_bundle_path(name)
        return FileTarget(self.root / relative, relative)

    def directory(self, name: str) -> str:
        path = self.root / safe_bundle_path(name)
        path.mkdir(parents=True, exist_ok=True)
        return str(path)


class TaskBase:
    """Base of pipeline tasks (``assay.pipe.PipeTask`` is the public, Disdat-shaped name)."""

    _assay_parameters: ClassVar[dict[str, Parameter]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        parameters: dict[str, Parameter] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Parameter):
                    parameters[name] = value
                elif name in parameters:
                    del parameters[name]  # a subclass replaced the parameter with something else
        cls._assay_parameters = parameters

    def __init__(self, **params: Any) -> None:
        family = self.task_family()
        declared = self._assay_parameters
        unknown = sorted(set(params) - set(declared))
        if unknown:
            known = ", ".join(sorted(declared)) or "none"
            raise InvalidParameter(
                f"{family} has no parameter {unknown[0]!r} (its parameters: {known})"
            )
        values: dict[str, Any] = {}
        for name, parameter in declared.items():
            if name in params:
                value = parameter.normalize(params[name], family)
            elif parameter.has_default:
                default = parameter.default
                value = default if default is None else parameter.normalize(default, family)
            else:
                raise InvalidParameter(f"parameter {name!r} of {family} is required (no default)")
            values[name] = value
            setattr(self, name, value)
        self._assay_values = values
        self._assay_requirements: dict[str, TaskDependency | ExternalInput] = {}
        self._assay_bundle_name: str | None = None
        self._assay_tags: dict[str, str] = {}
        self._assay_force = False
        self._assay_scope: PlanningScope | None = None
        self._assay_output: OutputFolder | None = None
        self._assay_inputs: dict[str, BundleRecord] = {}
        self._assay_signature: str | None = None
        self._assay_stop: Callable[[], bool] | None = None

    # -- identity -----------------------------------------------------------------------------
    @classmethod
    def task_family(cls) -> str:
        """Luigi's task family: the class name."""
        return cls.__name__

    @classmethod
    def task_identity(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def task_code_hash(cls) -> str:
        return code_hash(cls, stop_at=(TaskBase,))

    def param_json(self, significant_only: bool = False) -> dict[str, Any]:
        """The parameters as canonical JSON values (what the cache key and the bundle hold)."""
        return {
            name: parameter.to_json(self._assay_values[name])
            for name, parameter in self._assay_parameters.items()
            if parameter.significant or not significant_only
        }

    @property
    def task_signature(self) -> str:
        if self._assay_signature is None:
            self._assay_signature = signature(
                self.task_identity(), self.param_json(significant_only=True)
            )
        return self._assay_signature

    def describe(self) -> str:
        """``Family(a=1, b='x')``: how messages name this task."""
        shown = ", ".join(f"{k}={v!r}" for k, v in self._assay_values.items())
        text = f"{self.task_family()}({shown})"
        return text if len(text) <= 120 else text[:117] + "..."

    # -- the user's hooks ---------------------------------------------------------------------
    def pipe_requires(self) -> None:
        """Declare upstream tasks and bundles (default: none)."""

    def pipe_run(self, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{self.task_family()} must define pipe_run()")

    # -- declaring requirements (in pipe_requires) --------------------------------------------
    def _check_arg_name(self, arg_name: str) -> None:
        if not isinstance(arg_name, str) or not arg_name.isidentifier():
            raise InvalidPipeline(
                f"{self.describe()}: dependency name {arg_name!r} must be a Python identifier "
                "(it becomes a keyword argument of pipe_run)"
            )
        if arg_name in self._assay_requirements:
            raise InvalidPipeline(f"{self.describe()}: two dependencies named {arg_name!r}")

    def add_dependency(
        self, param_name: str, pipe_class: type[TaskBase], params: Mapping[str, Any] | None = None
    ) -> None:
        """Require task ``pipe_class(**params)``; its output arrives as ``param_name``."""
        self._check_arg_name(param_name)
        if not (isinstance(pipe_class, type) and issubclass(pipe_class, TaskBase)):
            raise InvalidPipeline(
                f"{self.describe()}: add_dependency({param_name!r}, ...) needs a task class, "
                f"got {pipe_class!r}"
            )
        if params is not None and not isinstance(params, Mapping):
            raise InvalidPipeline(
                f"{self.describe()}: add_dependency third argument must be a dict of parameters"
            )
        self._assay_requirements[param_name] = TaskDependency(
            param_name, pipe_class(**dict(params or {}))
        )

    def add_external_dependency(
        self,
        param_name: str,
        pipe_class: type[TaskBase] | str | None,
        params: Mapping[str, Any] | None = None,
        human_name: str | None = None,
        uuid: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> BundleRecord:
        """Require an existing bundle: by ``uuid``, else by name (``human_name``, or a bundle
        name given in place of the class), else the newest output of ``pipe_class(**params)``.
        Missing -> ``ExternalBundleNotFound``. Returns the bundle's record."""
        self._check_arg_name(param_name)
        if self._assay_scope is None:
            raise InvalidPipeline(
                f"{self.describe()}: add_external_dependency can only be called in pipe_requires"
            )
        record = self._assay_scope.find_external(self, pipe_class, params, human_name, uuid, tags)
        self._assay_requirements[param_name] = ExternalInput(param_name, record)
        return record

    def set_bundle_name(self, human_name: str) -> None:
        """Name this task's output bundle (default: the class name)."""
        if self._assay_output is not None:
            raise InvalidPipeline(
                f"{self.describe()}: call set_bundle_name in pipe_requires (the name is part of "
                "the plan), not in pipe_run"
            )
        self._assay_bundle_name = check_bundle_name(human_name)

    def add_tags(self, tags: Mapping[str, Any]) -> None:
        """Tags for this task's output bundle (in pipe_requires or pipe_run)."""
        self._assay_tags.update(bundle_tags(tags))

    def mark_force(self) -> None:
        """Re-run this task whatever its cache says (call in pipe_requires)."""
        self._assay_force = True

    def stop_requested(self) -> bool:
        """True once the run is being stopped (Ctrl-C, ``assay jobs stop``): a long
        ``pipe_run`` may check it and return early; its output will not be stored."""
        return self._assay_stop() if self._assay_stop is not None else False

    # -- upstream information (in pipe_run) ---------------------------------------------------
    def get_tags(self, user_arg_name: str) -> dict[str, str]:
        return dict(self._input(user_arg_name).tags)

    def get_bundle_uuid(self, user_arg_name: str) -> str:
        return self._input(user_arg_name).uuid

    def _input(self, user_arg_name: str) -> BundleRecord:
        try:
            return self._assay_inputs[user_arg_name]
        except KeyError:
            raise InvalidPipeline(
                f"{self.describe()} has no input named {user_arg_name!r} (inputs: "
                f"{', '.join(sorted(self._assay_inputs)) or 'none'})"
            ) from None

    # -- output files (in pipe_run) -----------------------------------------------------------
    def _folder(self, call: str) -> OutputFolder:
        if self._assay_output is None:
            raise InvalidPipeline(f"{self.describe()}: {call} can only be called in pipe_run")
        return self._assay_output

    def create_output_file(self, filename: Any) -> Any:
        """A file target in this task's output bundle (or a list / dict of them, as Disdat):
        write it, then return it (in the data) from ``pipe_run``."""
        folder = self._folder("create_output_file")
        if isinstance(filename, list | tuple):
            targets = [folder.file(name) for name in filename]
            return targets[0] if len(targets) == 1 else targets
        if isinstance(filename, Mapping):
            return {key: folder.file(name) for key, name in filename.items()}
        return folder.file(filename)

    def create_output_dir(self, dirname: str) -> str:
        """A directory in this task's output bundle; return its path from ``pipe_run``."""
        return self._folder("create_output_dir").directory(dirname)

    def get_output_dir(self) -> str:
        return str(self._folder("get_output_dir").root)
