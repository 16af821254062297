"""Managed pipeline jobs with SD2E ``datacatalog.managers.pipelinejobs`` names.

``catalog`` is Assay's catalog: ``None`` (the default from the environment), a catalog URL
(``sqlite:///...``, ``postgresql+psycopg://...``) or a ``Workspace``; it replaces SD2E's MongoDB
connection. ``pipelines`` names the pipeline: its id, its UUID, or a mapping with
``pipeline_uuid`` or ``id`` (SD2E's pipelines config); it must be registered
(``assay pipelines register``). What differs from SD2E, on purpose: tokens are always checked
and stay the same for the life of a job; admin events (``reset``, ``ready``, ``delete``) need
the admin token (``admin_token()``); indexing runs as a job whose errors fail the managed job
visibly.

Example::

    job = ManagedPipelineJob(None, "sd2e/tacobot", measurement_id="m1",
                             data={"inputs": ["/uploads/m1.fcs"]},
                             archive_patterns=[ArchiveIndexRequest([r"\\.csv$"])])
    job.setup()              # idempotent: the same inputs give the same job
    job.run(); ...; job.finish({"exit": 0}); job.index()
    job.build_webhook()      # for an external runner: POST {"event": "finish"} to it
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.core.errors import InvalidInput
from assay.core.settings import load_settings
from assay.pjobs import archive, tokens, webhooks
from assay.pjobs.events import EventOutcome, apply_event
from assay.pjobs.records import PipelineJob
from assay.pjobs.refs import refs_from_data_dict as _refs_from_data_dict
from assay.pjobs.requests import ArchiveIndexRequest, ProductIndexRequest, requests_from
from assay.pjobs.service import NewJob, create_pipelinejob, get_pipelinejob, identity

__all__ = [
    "ArchiveIndexRequest",
    "ManagedPipelineJob",
    "ManagedPipelineJobError",
    "ManagedPipelineJobInstance",
    "ProductIndexRequest",
    "admin_token",
]


class ManagedPipelineJobError(InvalidInput):
    """A managed pipeline job used out of order (e.g. an event before ``setup()``)."""

    code = "pipelinejob_usage"


def _workspace(catalog: Any) -> Workspace:
    if catalog is None:
        return open_workspace()
    if isinstance(catalog, Workspace):
        return catalog
    if isinstance(catalog, str):
        return open_workspace(dataclasses.replace(load_settings(), catalog_url=catalog))
    raise InvalidInput("catalog must be None, a catalog URL or a Workspace")


def _pipeline_reference(pipelines: Any, override: str | None) -> str:
    if override:
        return override
    if isinstance(pipelines, str):
        return pipelines
    if isinstance(pipelines, Mapping):
        for key in ("pipeline_uuid", "uuid", "id"):
            if isinstance(pipelines.get(key), str):
                return str(pipelines[key])
    raise InvalidInput("pipelines must name a registered pipeline (its id or uuid)")


def admin_token(catalog: Any = None) -> str:
    """The admin token of this ASSAY_HOME's server secret (for reset, ready, delete)."""
    return tokens.admin_token(_workspace(catalog).settings)


class _Events:
    """Event methods shared by new and loaded jobs."""

    workspace: Workspace
    uuid: str | None
    job: PipelineJob | None

    def _uuid(self) -> str:
        if self.uuid is None:
            raise ManagedPipelineJobError("call setup() before sending events to the job")
        return self.uuid

    def _event(
        self, event: str, data: dict[str, Any] | None = None, token: str | None = None
    ) -> PipelineJob:
        admin = False
        if event in ("reset", "ready", "delete"):
            tokens.check_token(self._uuid(), token, self.workspace.settings, admin=True)
            admin = True
        outcome: EventOutcome = apply_event(self.workspace, self._uuid(), event, data, admin=admin)
        self.job = outcome.record(self.workspace)
        return self.job

    @property
    def state(self) -> str | None:
        return self.job.state if self.job is not None else None

    def run(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("run", data)

    def update(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("update", data)

    def resource(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("resource", data)

    def fail(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("fail", data)

    def finish(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("finish", data)

    def index(self, data: dict[str, Any] | None = None) -> PipelineJob:
        """Index the archive now (as a ``pipelinejob_index`` job); FINISHED or FAILED after."""
        return self._event("index", data)

    def indexed(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("indexed", data)

    def validate(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("validate", data)

    def validated(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("validated", data)

    def reject(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("reject", data)

    def finalize(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("finalize", data)

    def retire(self, data: dict[str, Any] | None = None) -> PipelineJob:
        return self._event("retire", data)

    def reset(self, data: dict[str, Any] | None = None, *, token: str | None = None) -> PipelineJob:
        """Admin: clear the archive folder and move to RESET (from FAILED or REJECTED)."""
        return self._event("reset", data, token)

    def ready(self, data: dict[str, Any] | None = None, *, token: str | None = None) -> PipelineJob:
        """Admin: finish a reset; the job is CREATED again."""
        return self._event("ready", data, token)

    def delete(self, *, token: str | None = None) -> PipelineJob:
        """Admin: hide the job (its files stay)."""
        return self._event("delete", None, token)

    def build_webhook(self, base_url: str | None = None) -> str:
        """The URL an external runner POSTs events to (carries this job's token)."""
        return webhooks.build_webhook(self.workspace, self._uuid(), base_url)

    @property
    def token(self) -> str:
        return tokens.job_token(self._uuid(), self.workspace.settings)


class ManagedPipelineJob(_Events):
    """A job run outside Assay, with a deterministic uuid and archive path (see module doc).

    Exactly one of ``experiment_id``, ``sample_id``, ``measurement_id`` (a string or a list)
    links it upstream (``child_of``); ``inputs`` and file URIs in ``data`` become ``acted_on``,
    http(s) references in ``data`` ``acted_using``; the pipeline is ``generated_by``.
    Everything is validated here, before ``setup()`` writes anything.
    """

    def __init__(
        self,
        catalog: Any,
        pipelines: Any,
        instanced: bool = False,
        *,
        experiment_id: str | Sequence[str] | None = None,
        sample_id: str | Sequence[str] | None = None,
        measurement_id: str | Sequence[str] | None = None,
        data: Mapping[str, Any] | None = None,
        archive_path: str | None = None,
        archive_patterns: Sequence[Any] = (),
        product_patterns: Sequence[Any] = (),
        setup_archive_path: bool = True,
        session: str | None = None,
        agent: str | None = None,
        task: str | None = None,
        inputs: Sequence[str] = (),
        generated_by: str | Sequence[str] | None = None,
        pipeline_uuid: str | None = None,
    ) -> None:
        self.workspace = _workspace(catalog)
        self.uuid = None
        self.job = None
        self._new = NewJob(
            pipeline=_pipeline_reference(pipelines, pipeline_uuid),
            experiment_id=experiment_id,
            sample_id=sample_id,
            measurement_id=measurement_id,
            data=dict(data or {}),
            archive_path=archive_path,
            instanced=instanced,
            session=session,
            archive_patterns=list(archive_patterns),
            product_patterns=list(product_patterns),
            inputs=list(inputs),
            agent=agent,
            task=task,
            generated_by=[generated_by]
            if isinstance(generated_by, str)
            else list(generated_by or []),
            setup_archive_path=setup_archive_path,
        )
        identity(self.workspace, self._new)  # validation before anything is written
        if archive_path is not None:
            archive.normalize_archive_path(archive_path, self.workspace.settings)
        requests_from(archive_patterns, "archive")
        requests_from(product_patterns, "product")

    def setup(self, data: Mapping[str, Any] | None = None) -> ManagedPipelineJob:
        """Create the job (or find the same one made before). ``data`` is merged into the
        job's data first (it is part of the job's identity)."""
        if data:
            self._new = dataclasses.replace(self._new, data={**(self._new.data or {}), **data})
        job, _ = create_pipelinejob(self.workspace, self._new)
        self.uuid = job.uuid
        self.job = job
        return self

    @property
    def archive_path(self) -> str | None:
        return self.job.archive_path if self.job is not None else None

    @property
    def data(self) -> dict[str, Any]:
        return dict(self._new.data or {})

    def get_archive_path(self) -> str:
        """The job's archive path (logical, ``/products/v2/...``); ``setup()`` decides it."""
        if self.job is None:
            raise ManagedPipelineJobError("call setup() first: it decides the archive path")
        return self.job.archive_path

    def instanced_directory(self, session: str | None = None) -> str:
        """A fresh ``<adjective>-<animal>-<UTC timestamp>`` (or ``<session>-<timestamp>``)."""
        return archive.instanced_directory(session)

    def refs_from_data_dict(
        self, data: dict[str, Any] | None = None, store: str = "files"
    ) -> list[str]:
        return _refs_from_data_dict(data if data is not None else self.data, store)


class ManagedPipelineJobInstance(_Events):
    """An existing job, loaded by uuid, to send it events (``handle``) with a token."""

    def __init__(self, catalog: Any, uuid: str, token: str | None = None) -> None:
        self.workspace = _workspace(catalog)
        self.job = get_pipelinejob(self.workspace, uuid)
        self.uuid = self.job.uuid
        self._token = token

    def __getattr__(self, name: str) -> Any:
        # archive_path, child_of, acted_on, ... read through to the job record
        job = self.__dict__.get("job")
        if job is not None and name in PipelineJob.__dataclass_fields__:
            return getattr(job, name)
        raise AttributeError(name)

    def handle(self, event_doc: Mapping[str, Any], token: str | None = None) -> PipelineJob:
        """Apply ``{"event"|"name": ..., "data": {...}, "id": ...}``, verifying ``token``."""
        outcome = webhooks.handle(
            self.workspace, self._uuid(), dict(event_doc), token or self._token
        )
        self.job = outcome.record(self.workspace)
        return self.job
