"""The job layer: one job model for every kind of run (question, compute job, pipeline task,
managed pipeline job).

A job is a catalog row that moves through a state machine declared as data (``fsm``); every
move is a guarded update plus an event row (``store``); work runs in this process
(``runner.run_inline``) or in a supervised process group (``executors.local``); environments
(``environments``) say where and with which limits; ``reconcile`` makes restarts safe.
This package knows no twine, no task graph and no manifest semantics (see LAYERS.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.jobs.environments import Environment, get_environment, load_environments
    from assay.jobs.fsm import (
        JOB_MACHINE,
        State,
        StateMachine,
        Transition,
        machine_for,
        register_machine,
    )
    from assay.jobs.ids import job_id
    from assay.jobs.reconcile import reconcile, wait_job
    from assay.jobs.records import JobEvent, JobRecord
    from assay.jobs.runner import JobContext, run_inline
    from assay.jobs.store import (
        append_event,
        append_events,
        create_job,
        fire,
        get_job,
        heartbeat,
        list_events,
        list_jobs,
        request_stop,
        wait_terminal,
    )

# Names are imported on first use: a job worker process (``python -m assay.jobs.worker``)
# imports this package, and must not pay for the catalog (SQLAlchemy) unless its task needs it.
_EXPORTS = {
    "Environment": "assay.jobs.environments",
    "get_environment": "assay.jobs.environments",
    "load_environments": "assay.jobs.environments",
    "JOB_MACHINE": "assay.jobs.fsm",
    "State": "assay.jobs.fsm",
    "StateMachine": "assay.jobs.fsm",
    "Transition": "assay.jobs.fsm",
    "machine_for": "assay.jobs.fsm",
    "register_machine": "assay.jobs.fsm",
    "job_id": "assay.jobs.ids",
    "reconcile": "assay.jobs.reconcile",
    "wait_job": "assay.jobs.reconcile",
    "JobEvent": "assay.jobs.records",
    "JobRecord": "assay.jobs.records",
    "JobContext": "assay.jobs.runner",
    "run_inline": "assay.jobs.runner",
    "append_event": "assay.jobs.store",
    "append_events": "assay.jobs.store",
    "create_job": "assay.jobs.store",
    "fire": "assay.jobs.store",
    "get_job": "assay.jobs.store",
    "heartbeat": "assay.jobs.store",
    "list_events": "assay.jobs.store",
    "list_jobs": "assay.jobs.store",
    "request_stop": "assay.jobs.store",
    "wait_terminal": "assay.jobs.store",
}

__all__ = [
    "JOB_MACHINE",
    "Environment",
    "JobContext",
    "JobEvent",
    "JobRecord",
    "State",
    "StateMachine",
    "Transition",
    "append_event",
    "append_events",
    "create_job",
    "fire",
    "get_environment",
    "get_job",
    "heartbeat",
    "job_id",
    "list_events",
    "list_jobs",
    "load_environments",
    "machine_for",
    "reconcile",
    "register_machine",
    "request_stop",
    "run_inline",
    "wait_job",
    "wait_terminal",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'assay.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
