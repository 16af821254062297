"""Compute-to-data jobs: start (check, stage, submit), status, results, stop, environments.

A compute job is a job of kind ``compute`` on the job layer's machine ``job``:

1. **Checks, before anything is written.** The environment must exist; every dataset (main and
   additional) must be consumable by the consumer with this algorithm in this environment
   (``assay.jobs.policies``; the refusal names the code and the rule); a compute-access dataset
   needs a sandbox, and bubblewrap must be installed (else one line saying to install it).
2. **Id.** ``jobs.ids.job_id("compute", algorithm id, code hash, [(key, content hash)...],
   custom data, consumer, environment)``: the same work asked again by the same consumer gets the
   existing job (whatever its state) unless ``force`` re-creates a finished one.
3. **Staging** (``staging``) materialises the datasets and the algorithm's code while the job
   is CREATED; a failure there ends it PROVISION_FAILED with the reason.
4. **Run** on the environment's executor (the job layer's ``LocalExecutor``): QUEUED until a
   slot is free, PROVISIONING while it lays out the working directory from the staged folders,
   RUNNING as a process group (limits, bubblewrap sandbox); output and errors go to
   ``logs/algorithm.log``.
5. **PUBLISHING** on the control side when the process ends (``publishing``): one output bundle
   in one transaction; then the staged input copies are deleted. An algorithm that exits 0 and
   writes nothing ends FINISHED with no ``output`` results (its logs are still results); one that
   exits non-zero ends FAILED, with its logs published too.

Only the consumer who started a job may read its status, results and logs or stop it.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.bundles import operations
from assay.bundles.workspace import Workspace, open_workspace
from assay.computejobs import algorithms, publishing, staging
from assay.computejobs.algorithms import Algorithm
from assay.computejobs.staging import StagedInput
from assay.core.errors import (
    AssayError,
    EnvironmentNotFound,
    InvalidInput,
    JobNotFound,
    NotJobOwner,
    SandboxUnavailable,
)
from assay.core.manifest import parse_reference
from assay.jobs import store as job_store
from assay.jobs.environments import Environment, load_environments
from assay.jobs.fsm import machine_for
from assay.jobs.ids import job_id as make_job_id
from assay.jobs.policies import check_consumable, get_policy
from assay.jobs.records import JobRecord

KIND = "compute"
#: States whose jobs did not do their work: ``ok`` is False for them (Ocean: 31, 32).
NOT_OK_STATES = frozenset({"PROVISION_FAILED", "FAILED", "TIMED_OUT"})
BWRAP_HINT = (
    "bubblewrap (bwrap) is not installed, and compute-access datasets only run sandboxed: "
    "install it (apt-get install bubblewrap, dnf install bubblewrap)"
)


@dataclass(frozen=True)
class ComputeInput:
    """A dataset for a job (Ocean's ``ComputeInput``): a catalog reference
    ``assay://context/name[@uuid]``, an optional key under ``inputs/`` and optional userdata
    (recorded with the job and part of its id; Ocean hands it to the data's provider, and a
    local catalog has none)."""

    dataset: str
    key: str | None = None
    userdata: dict[str, Any] | None = None


def _as_input(value: Any) -> ComputeInput:
    if isinstance(value, ComputeInput):
        return value
    if isinstance(value, str):
        return ComputeInput(value)
    raise InvalidInput(
        f"a dataset is a catalog reference assay://context/name[@uuid] or a ComputeInput, got "
        f"{type(value).__name__}"
    )


def resolve_inputs(workspace: Workspace, datasets: Sequence[Any]) -> list[StagedInput]:
    """Each dataset's newest (or named) bundle, its key and its policy."""
    wanted = [_as_input(value) for value in datasets]
    records = []
    for item in wanted:
        reference = parse_reference(item.dataset)
        if reference.kind != "catalog" or reference.context is None or reference.name is None:
            raise InvalidInput(
                f"dataset {item.dataset!r}: give a catalog reference assay://context/name[@uuid]"
            )
        records.append(
            operations.require(workspace, reference.context, reference.name, reference.uuid)
        )
    keys = staging.unique_keys([item.key for item in wanted], [r.name for r in records])
    return [
        StagedInput(
            key, record, get_policy(record.context, record.name, workspace=workspace), item.userdata
        )
        for key, record, item in zip(keys, records, wanted, strict=True)
    ]


def environments(workspace: Workspace | None = None) -> dict[str, Environment]:
    workspace = workspace or open_workspace()
    return load_environments(workspace.settings)


def require_environment(environment_id: str, workspace: Workspace) -> Environment:
    found = environments(workspace)
    if environment_id not in found:
        known = ", ".join(sorted(found)) or "none"
        raise EnvironmentNotFound(
            f"no compute environment {environment_id!r} (declared: {known}); see "
            "'assay env ls' and ASSAY_HOME/environments.yaml"
        )
    return found[environment_id]


def check_all(
    inputs: Sequence[StagedInput], consumer: str, algorithm: Algorithm, environment: Environment
) -> None:
    """Every dataset's consumability, then the sandbox; raises at the first refusal."""
    if environment.executor == "dask" and any(item.policy.access == "compute" for item in inputs):
        raise SandboxUnavailable(
            f"environment {environment.id} runs on Dask; compute-access datasets run only in a "
            "local sandboxed environment (the sandbox is local-only)"
        )
    for item in inputs:
        check_consumable(
            item.policy,
            consumer,
            algorithm.ref,
            network=bool(environment.network),
            isolation=environment.isolation,
        ).raise_unless_ok()
    needs_sandbox = any(item.policy.access == "compute" for item in inputs)
    if needs_sandbox and shutil.which("bwrap") is None:
        raise SandboxUnavailable(BWRAP_HINT)


def job_identity(
    algorithm: Algorithm,
    inputs: Sequence[StagedInput],
    custom_data: Any,
    consumer: str,
    environment_id: str,
) -> str:
    return make_job_id(
        KIND,
        algorithm.ref.id,
        algorithm.ref.code_hash,
        [[item.key, item.record.content_hash, item.userdata] for item in inputs],
        custom_data,
        consumer,
        environment_id,
    )


def workdir_of(workspace: Workspace, job_id: str) -> Path:
    return workspace.settings.home / "compute-jobs" / job_id


def start(
    consumer: str,
    datasets: Sequence[Any],
    environment_id: str,
    algorithm: Algorithm,
    custom_data: Any = None,
    *,
    force: bool = False,
    workspace: Workspace | None = None,
) -> str:
    """Check, record, stage and submit a compute job; returns its id (see the module doc)."""
    workspace = workspace or open_workspace()
    if not isinstance(consumer, str) or not consumer.strip():
        raise InvalidInput("consumer: give the consumer's id (a non-empty string)")
    environment = require_environment(environment_id, workspace)
    inputs = resolve_inputs(workspace, datasets)
    check_all(inputs, consumer, algorithm, environment)
    job_id = job_identity(algorithm, inputs, custom_data, consumer, environment.id)
    spec = {
        "consumer": consumer,
        "algorithm": algorithm.describe(),
        "algorithm_bundle_uuid": algorithm.bundle.uuid if algorithm.bundle else None,
        "inputs": [{**item.describe(), "uuid": item.record.uuid} for item in inputs],
        "custom_data": custom_data,
        "environment": environment.id,
    }
    _record, created = job_store.create_job(
        KIND,
        job_id,
        spec=spec,
        environment=environment.id,
        owner=consumer,
        force=force,
        workspace=workspace,
    )
    if not created:
        return job_id
    workdir = workdir_of(workspace, job_id)
    staging_dir = staging.staging_dir_of(workspace, job_id)
    staging.remove_tree(workdir)  # a forced re-run starts from a clean directory
    try:
        staged = staging.stage_inputs(workspace, staging_dir, inputs, custom_data)
        workdir.mkdir(parents=True, exist_ok=True)
        algo_path = algorithms.stage_algorithm(workspace, algorithm, workdir)
        argv = algorithms.argv_for(algorithm, algo_path)
        env = staging.algorithm_environment(algorithm.ref.id, algo_path)
        executor = None if environment.executor == "dask" else _executor(environment, workspace)
    except (AssayError, OSError) as error:
        staging.remove_staged(staging_dir, workdir)
        job_store.fire(job_id, "provision", workspace=workspace)
        job_store.fire(
            job_id,
            "provision_fail",
            error=f"staging: {type(error).__name__}: {error}",
            workspace=workspace,
        )
        raise
    # The executor queues the job, claims a slot (PROVISIONING), lays out the working directory
    # from the staged folders, runs it (RUNNING) and calls publish_job when it exits.
    if executor is None:
        _submit_to_dask(environment, workspace, job_id, argv, workdir, env, staged, custom_data)
        return job_id
    executor.submit(job_id, argv, workdir=workdir, env=env, inputs=staged, custom_data=custom_data)
    return job_id


def _submit_to_dask(
    environment: Environment,
    workspace: Workspace,
    job_id: str,
    argv: list[str],
    workdir: Path,
    env: Any,
    staged: Any,
    custom_data: Any,
) -> None:
    """One ``client.submit`` of the worker side (``computejobs.dasktask``); a scheduler that
    does not answer fails the job (PROVISION_FAILED is for staging) and raises."""
    from assay.computejobs.dasktask import run_compute_job
    from assay.jobs.executors.dask import DaskExecutor

    try:
        executor = DaskExecutor(environment, workspace)
        executor.send_call(
            job_id,
            run_compute_job,
            job_id,
            list(argv),
            str(workdir),
            dict(env or {}),
            {key: str(path) for key, path in dict(staged or {}).items()},
            custom_data,
            environment,
            executor.refs(),
            publish_on_exit,  # pickled by reference: the worker imports this module
        )
    except AssayError as error:
        job_store.fire(
            job_id, "fail", error=f"{type(error).__name__}: {error}", workspace=workspace
        )
        raise


# -- the executor and the publishing hook ----------------------------------------------------
_executors: dict[tuple[str, str, str], Any] = {}
_executors_lock = threading.Lock()


def _executor(environment: Environment, workspace: Workspace) -> Any:
    """One LocalExecutor per (ASSAY_HOME, catalog, environment as declared) in this process,
    publishing on exit; a changed declaration gets a new executor."""
    from assay.jobs.executors.local import LocalExecutor

    declared = json.dumps(environment.as_dict(), sort_keys=True, default=str)
    key = (str(workspace.settings.home), workspace.settings.catalog_url, declared)
    with _executors_lock:
        executor = _executors.get(key)
        if executor is None:
            executor = LocalExecutor(environment, workspace, on_exit=_make_publisher(workspace))
            _executors[key] = executor
        return executor


def close_executors(*, wait: bool = True, timeout: float | None = None) -> None:
    """Close every executor this module made (long-lived processes switching homes, tests);
    with ``wait``, their jobs end first."""
    with _executors_lock:
        executors = list(_executors.values())
        _executors.clear()
    for executor in executors:
        executor.close(wait=wait, timeout=timeout)


def _make_publisher(workspace: Workspace) -> Any:
    def on_exit(job_id: str, returncode: int, workdir: Path) -> dict[str, Any] | None:
        return publish_on_exit(workspace, job_id, returncode, workdir)

    return on_exit


def publish_on_exit(
    workspace: Workspace, job_id: str, returncode: int, workdir: Path
) -> dict[str, Any] | None:
    """The executor's ``on_exit`` for compute jobs (other kinds: None)."""
    record = job_store.get_job(job_id, workspace=workspace)
    if record.kind != KIND:
        return None
    return publish_job(record, returncode, Path(workdir), workspace)


def publish_job(
    record: JobRecord, returncode: int | None, workdir: Path, workspace: Workspace
) -> dict[str, Any]:
    """Publish what the job left (outputs and logs) as its output bundle, then delete every
    staged copy of its inputs; returns ``{"output_bundle": ...}`` for the job's result. Runs
    in the executor's ``on_exit`` hook, after it fired ``publish`` for a successful exit."""
    outcomes = {True: "finished", False: "failed"}
    outcome = "stopped" if record.stop_requested else outcomes[returncode == 0]
    staging_dir = staging.staging_dir_of(workspace, record.job_id)
    try:
        staging.finish_staging(staging_dir, workdir)
        bundle = publishing.publish_outputs(
            workspace,
            record.job_id,
            workdir,
            consumer=record.owner,
            algorithm=dict(record.spec.get("algorithm") or {}),
            inputs=[
                {"key": item["key"], "uuid": item["uuid"]} for item in record.spec.get("inputs", [])
            ],
            outcome=outcome,
            algorithm_bundle_uuid=record.spec.get("algorithm_bundle_uuid"),
        )
    finally:
        staging.remove_staged(staging_dir, workdir)
    reference = f"assay://{bundle.context}/{bundle.name}@{bundle.uuid}"
    job_store.append_event(
        record.job_id, "published", {"bundle": reference, "outcome": outcome}, workspace=workspace
    )
    return {"output_bundle": reference}


# -- reading and stopping -------------------------------------------------------------------
def owned_job(job_id: str, consumer: str, workspace: Workspace) -> JobRecord:
    """The compute job, if ``consumer`` started it; JobNotFound / NotJobOwner otherwise."""
    record = job_store.get_job(job_id, workspace=workspace)
    if record.kind != KIND:
        raise JobNotFound(f"no compute job {job_id!r} (job {record.job_id} is a {record.kind})")
    if record.owner != consumer:
        raise NotJobOwner(
            f"compute job {record.job_id} was started by another consumer; {consumer!r} may "
            "not read or stop it",
            details={"job_id": record.job_id},
        )
    return record


def status_of(record: JobRecord, workspace: Workspace) -> dict[str, Any]:
    """Ocean's status shape (``ok``, ``status``, ``statusText``, ``dateCreated``,
    ``dateFinished``, ``results``) plus our ``state``, ``jobId``, ``owner`` and ``error``."""
    state = machine_for(record.machine).state(record.state)
    results = [
        {key: item[key] for key in ("index", "filename", "filesize", "type")}
        for item in publishing.list_results(workspace, record.job_id)
    ]
    bundle = publishing.output_bundle(workspace, record.job_id)
    return {
        "ok": record.state not in NOT_OK_STATES,
        "status": record.state_code,
        "statusText": state.description,
        "state": record.state,
        "dateCreated": record.created,
        "dateFinished": record.finished,
        "results": results,
        "jobId": record.job_id,
        "owner": record.owner,
        "environment": record.environment,
        "algorithm": (record.spec.get("algorithm") or {}).get("id"),
        "inputs": [item["key"] for item in record.spec.get("inputs", [])],
        "stopRequested": record.stop_requested,
        # Ocean's resultsDid: where the results were published (None before publishing)
        "outputBundle": (
            f"assay://{bundle.context}/{bundle.name}@{bundle.uuid}" if bundle else None
        ),
        "error": record.error,
    }


def stop(job_id: str, consumer: str, workspace: Workspace) -> dict[str, Any]:
    """Ask the job to stop; it ends STOPPED. A job already ended: InvalidTransition."""
    record = owned_job(job_id, consumer, workspace)
    job_store.request_stop(record.job_id, workspace=workspace)
    return status_of(job_store.get_job(record.job_id, workspace=workspace), workspace)
