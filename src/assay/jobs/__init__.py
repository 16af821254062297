"""The job layer: one job model for every kind of run (question, compute job, pipeline task,
managed pipeline job).

A job is a catalog row that moves through a state machine declared as data (``fsm``); every
move is a guarded update plus an event row (``store``); work runs in this process
(``runner.run_inline``) or in a supervised process group (``executors.local``); environments
(``environments``) say where and with which limits; ``reconcile`` makes restarts safe.
This package knows no twine, no task graph and no manifest semantics (see LAYERS.md).
"""

from assay.jobs.fsm import (
    JOB_MACHINE,
    State,
    StateMachine,
    Transition,
    machine_for,
    register_machine,
)
from assay.jobs.ids import job_id
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

__all__ = [
    "JOB_MACHINE",
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
    "get_job",
    "heartbeat",
    "job_id",
    "list_events",
    "list_jobs",
    "machine_for",
    "register_machine",
    "request_stop",
    "run_inline",
    "wait_terminal",
]
