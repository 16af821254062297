"""Runner: validate configuration and inputs against the twine, run the app, validate and commit
its outputs, and hand back the Analysis.

``Runner(app_src, twine, configuration_values, configuration_manifest, children,
output_location, service_id).run(input_values, input_manifest)`` runs the app in this process
(as Octue's ``Runner`` does). ``Child.ask`` runs the same Runner in a worker process, so a
crashing app cannot take the asker down.

Order, so that bad input fails before any app code runs: the twine and app load and the
configuration is validated when the Runner is made; credentials, input values and the input
manifest (required datasets, every file's tags) when ``run`` is called; the outputs after the app
returns, before any output dataset is committed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from assay.bundles.manifest_download import install_downloader
from assay.core.errors import InvalidInput
from assay.services import app_loader
from assay.services.analysis import Analysis, as_invalid_output
from assay.services.config import (
    LOCAL_SRUID,
    ChildSpec,
    ServiceConfig,
    load_config,
    parse_sruid,
    select_service,
)
from assay.services.context import (
    QuestionContext,
    current_question,
    enter_question,
    leave_question,
    to_manifest,
)
from assay.services.twine import Twine

__all__ = ["QuestionContext", "Runner", "current_question", "to_manifest"]

install_downloader()  # manifests handed to apps and askers can download their datasets
logger = logging.getLogger(__name__)


def _child_specs(children: Iterable[Any] | None) -> list[ChildSpec]:
    specs: list[ChildSpec] = []
    for index, child in enumerate(children or []):
        if isinstance(child, ChildSpec):
            specs.append(child)
            continue
        if not isinstance(child, Mapping) or not {"key", "id"} <= set(child):
            raise InvalidInput(
                f"children[{index}]: expected {{'key', 'id', 'backend'}}, got {child!r}"
            )
        backend = child.get("backend") or {"name": "local"}
        specs.append(ChildSpec(str(child["key"]), str(child["id"]), dict(backend)))
    return specs


class Runner:
    """Runs a service's app on questions; see the module docstring for the order of checks."""

    def __init__(
        self,
        app_src: Any,
        twine: Any = "twine.json",
        configuration_values: Any = None,
        configuration_manifest: Any = None,
        children: Iterable[Any] | None = None,
        output_location: str | None = None,
        service_id: str | None = None,
        configuration_manifest_base: str | os.PathLike[str] | None = None,
        commit_outputs: bool = True,
    ) -> None:
        self.service_id = str(parse_sruid(service_id or LOCAL_SRUID, require_tag=True))
        self.twine = Twine(twine)
        self.app_src = app_src
        self._run_app: Callable[[Any], None] = app_loader.resolve_app(app_src)
        twine_path = self.twine.source
        self.code_hash = app_loader.code_hash(app_src, twine_path)
        self.configuration_values = self.twine.validate_configuration_values(configuration_values)
        self.configuration_manifest = to_manifest(
            configuration_manifest, "configuration_manifest", configuration_manifest_base
        )
        self.twine.validate_manifest("configuration_manifest", self.configuration_manifest)
        self.children = _child_specs(children)
        if self.children or self.twine.children:
            self.twine.validate_children(self.children)
        self.output_location = output_location
        if output_location is not None:
            from assay.services.outputs import output_context

            output_context(output_location)
        self.commit_outputs = commit_outputs
        self._code_version: dict[str, Any] | None = None

    @classmethod
    def from_config(
        cls,
        config: ServiceConfig | str | os.PathLike[str],
        service: str | None = None,
        twine: Twine | None = None,
    ) -> Runner:
        """A Runner for a service in an ``assay.yaml`` (a file, its folder, or a parsed one);
        ``twine``: its twine loaded already (else the file is read)."""
        if not isinstance(config, ServiceConfig):
            path = Path(config)
            services = load_config(path)
            config = select_service(services, service, path)
        return cls(
            app_src=str(config.app_source_path),
            twine=twine if twine is not None else str(config.twine_path),
            configuration_values=config.configuration_values,
            configuration_manifest=config.configuration_manifest,
            configuration_manifest_base=config.configuration_manifest_base,
            children=config.children,
            output_location=config.output_location,
            service_id=config.sruid,
        )

    @property
    def service_name(self) -> str:
        return parse_sruid(self.service_id).name

    def code_version(self) -> dict[str, Any]:
        """``{"sruid", "code_hash"}`` plus git commit, branch and dirty flag of the app folder."""
        if self._code_version is None:
            from assay.bundles.codeversion import code_version

            root = app_loader._source_root(self.app_src)
            folder = str(root if root is None or root.is_dir() else root.parent) if root else None
            self._code_version = {
                "sruid": self.service_id,
                "code_hash": self.code_hash,
                **(code_version(folder) if folder else {}),
            }
        return self._code_version

    def run(
        self,
        input_values: Any = None,
        input_manifest: Any = None,
        children: Iterable[Any] | None = None,
        handle_monitor_message: Callable[[Any], None] | None = None,
        question_uuid: str | None = None,
        parent_question_uuid: str | None = None,
        originator_question_uuid: str | None = None,
    ) -> Analysis:
        """Validate the inputs, run the app, validate and commit its outputs; return the
        Analysis (``output_values``; ``output_manifest`` with catalog references)."""
        del parent_question_uuid  # recorded by whoever asked; accepted for Octue's signature
        self.twine.validate_credentials()
        self.twine.validate_input_values(input_values)
        manifest = to_manifest(input_manifest, "input_manifest")
        self.twine.validate_manifest("input_manifest", manifest)
        specs = _child_specs(children) if children is not None else self.children
        if children is not None:
            self.twine.validate_children(specs)
        analysis = Analysis(
            twine=self.twine,
            configuration_values=self.configuration_values,
            configuration_manifest=self.configuration_manifest,
            input_values=input_values,
            input_manifest=manifest,
            children=self._make_children(specs),
            output_location=self.output_location,
            handle_monitor_message=handle_monitor_message,
            id=question_uuid,
            service_id=self.service_id,
        )
        context = QuestionContext(
            analysis.id, originator_question_uuid or analysis.id, self.service_id
        )
        token = enter_question(context)
        succeeded = False
        try:
            self._run_app(analysis)
            try:
                analysis.output_manifest = to_manifest(analysis.output_manifest, "output_manifest")
            except InvalidInput as error:
                raise as_invalid_output(error) from None
            analysis.finalise()
            if self.commit_outputs and analysis.output_manifest is not None:
                from assay.services.outputs import commit_outputs

                analysis.output_manifest, analysis.output_bundles = commit_outputs(
                    analysis.output_manifest,
                    service_name=self.service_name,
                    sruid=self.service_id,
                    code_version=self.code_version(),
                    question_uuid=analysis.id,
                    input_values=input_values,
                    input_manifest=manifest,
                    configuration_manifest=self.configuration_manifest,
                    output_location=self.output_location,
                )
            succeeded = True
        finally:
            leave_question(token)
            if self.commit_outputs or not succeeded:
                analysis._close()  # outputs are in the store now, or there are none to keep
            else:
                analysis._close_monitors()  # the caller publishes the outputs, then removes them
        return analysis

    def _make_children(self, specs: list[ChildSpec]) -> dict[str, Any]:
        if not specs:
            return {}
        from assay.services.child import Child

        return {spec.key: Child(id=spec.id, backend=spec.backend) for spec in specs}

    def __repr__(self) -> str:
        return f"<Runner({self.service_id!r})>"
