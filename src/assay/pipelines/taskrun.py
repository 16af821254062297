"""Running one task: inputs in, ``pipe_run``, output bundle out — whole or not at all.

The output bundle is built in a staging folder (held by a lock, so ``gc`` leaves a live one
alone) and stored with ``operations.create_bundle``: blobs first, then one transaction. Before
storing, the task passes the *commit gate*: once a stop was requested (Ctrl-C), no task starts
storing; a task already storing finishes, and the stopper waits for it. So an interrupted run
leaves every bundle whole or absent.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid as uuid_module
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import GeneratorType
from typing import Any

from assay.bundles import operations, remotes
from assay.bundles import staging as staging_folders
from assay.bundles.workspace import Workspace
from assay.catalog import queries
from assay.core.errors import BundleNotFound, InvalidPipeline
from assay.core.records import BundleRecord, Dependency
from assay.pipelines.task import OutputFolder, TaskBase


class TaskStopped(Exception):
    """Raised inside a task's run when the run was stopped before its output was stored."""


class CommitGate:
    """Lets outputs be stored until ``close``; ``close`` waits for stores in progress."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._closed = False
        self._storing = 0
        self._closers: dict[int, Callable[[], None]] = {}

    @property
    def closed(self) -> bool:
        return self._closed

    @contextlib.contextmanager
    def storing(self) -> Iterator[None]:
        with self._condition:
            if self._closed:
                raise TaskStopped("the run was stopped before this task's output was stored")
            self._storing += 1
        try:
            yield
        finally:
            with self._condition:
                self._storing -= 1
                self._condition.notify_all()

    def on_close(self, key: int, closer: Callable[[], None] | None) -> None:
        """Call ``closer`` when the gate closes (after stores in progress ended): how a
        subprocess task is killed. ``None`` removes the entry."""
        with self._condition:
            if closer is None:
                self._closers.pop(key, None)
            else:
                self._closers[key] = closer

    def close(self, timeout: float | None = None) -> bool:
        """Refuse new stores; True when no store is in progress (within ``timeout``)."""
        with self._condition:
            self._closed = True
            idle = self._condition.wait_for(lambda: self._storing == 0, timeout)
            closers = list(self._closers.values())
        for closer in closers:
            closer()
        return idle


@dataclass(frozen=True)
class TaskRunSpec:
    """Everything about one run of a task except the task object (JSON-able)."""

    context: str
    bundle_name: str
    processing_name: str
    inputs: dict[str, str]  # argument name -> upstream bundle uuid
    params: dict[str, Any]
    code_version: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)
    bundle_uuid: str | None = None
    push: bool = False  # commit and push the output to the context's remote (incremental_push)
    pull: bool = False  # localize inputs from the context's remote first (incremental_pull)
    owner: str | None = None  # the output bundle's owner (None: this process's user)

    def as_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "bundle_name": self.bundle_name,
            "processing_name": self.processing_name,
            "inputs": dict(self.inputs),
            "params": dict(self.params),
            "code_version": dict(self.code_version),
            "tags": dict(self.tags),
            "bundle_uuid": self.bundle_uuid,
            "push": self.push,
            "pull": self.pull,
            "owner": self.owner,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskRunSpec:
        return cls(**dict(data))


def load_inputs(
    workspace: Workspace,
    inputs: Mapping[str, str],
    known: Mapping[str, BundleRecord] | None = None,
) -> tuple[dict[str, BundleRecord], dict[str, Any]]:
    """The upstream records and their data (as saved) by argument name; ``known`` records
    (made or found earlier in this run) are not read again."""
    found = dict(known or {})
    missing = [uuid for uuid in set(inputs.values()) if uuid not in found]
    if missing:
        with workspace.read() as conn:
            found.update(queries.records_by_uuid(conn, missing))
    records: dict[str, BundleRecord] = {}
    for arg, uuid in inputs.items():
        if uuid not in found:
            raise BundleNotFound(f"input {arg!r} (bundle {uuid}) was removed during the run")
        records[arg] = found[uuid]
    data = {arg: operations.load_data(workspace, record) for arg, record in records.items()}
    return records, data


def run_task(
    workspace: Workspace,
    task: TaskBase,
    spec: TaskRunSpec,
    store_guard: Callable[[], contextlib.AbstractContextManager[None]],
    known: Mapping[str, BundleRecord] | None = None,
) -> BundleRecord:
    """Run ``task`` and store its output bundle; ``store_guard()`` wraps the store step
    (the commit gate in-process, a handshake with the parent in a subprocess).

    The staging folder is made (and locked) only when the task asks for an output file or
    directory: most tasks return data, and a folder per task would cost more than the rest."""
    if spec.pull:
        _localize_inputs(workspace, spec)
    records, data_in = load_inputs(workspace, spec.inputs, None if spec.pull else known)
    bundle_uuid = spec.bundle_uuid or str(uuid_module.uuid4())
    staging = workspace.settings.home / "staging" / bundle_uuid
    lock_fds: list[int] = []

    def claim() -> None:
        lock_fds.append(staging_folders.claim(staging))

    try:
        task._assay_inputs = records
        task._assay_output = OutputFolder(staging, claim)
        start = time.time()
        data = task.pipe_run(**data_in)
        if isinstance(data, GeneratorType):
            raise InvalidPipeline(
                f"{task.describe()}: pipe_run is a generator (yield_dependency is not "
                "supported); declare upstream tasks in pipe_requires"
            )
        with store_guard():
            record = operations.create_bundle(
                workspace,
                spec.context,
                spec.bundle_name,
                data,
                tags={**spec.tags, **task._assay_tags},
                dependencies=[
                    Dependency(uuid, "depends_on", arg) for arg, uuid in spec.inputs.items()
                ],
                params=spec.params,
                processing_name=spec.processing_name,
                owner=spec.owner,
                start_time=start,
                code_version=spec.code_version,
                staging=staging if lock_fds else None,
                bundle_uuid=bundle_uuid,
            )
    finally:
        task._assay_output = None
        if lock_fds:
            staging_folders.release(lock_fds[0], staging)
    if spec.push:
        record = operations.commit(workspace, spec.context, uuid=record.uuid)
        remotes.push(workspace, spec.context, uuid=record.uuid)
    return record


def _localize_inputs(workspace: Workspace, spec: TaskRunSpec) -> None:
    with workspace.read() as conn:
        found = queries.records_by_uuid(conn, list(set(spec.inputs.values())))
    for record in found.values():
        if not remotes.is_localized(workspace, record):
            remotes.localize_bundle(workspace, spec.context, uuid=record.uuid)
