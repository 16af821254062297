"""The job layer's records: a job's row and one of its events, as frozen dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from assay.jobs.fsm import machine_for


@dataclass(frozen=True)
class JobRecord:
    """One job as the catalog holds it. Times are UTC epoch seconds."""

    job_id: str
    kind: str
    machine: str
    state: str
    state_code: int
    environment: str
    owner: str
    spec: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created: float
    updated: float
    started: float | None
    finished: float | None
    last_seen: float | None
    pid: int | None
    host: str | None
    stop_requested: bool
    parent_job_id: str | None
    #: Working directory and process group of a job run by an executor (``None`` otherwise);
    #: ``pid``/``host`` name the process supervising the job (the one that heartbeats).
    workdir: str | None = None
    pgid: int | None = None
    #: How an executor starts the job (argv, env, inputs, ...), so a re-queued job can restart.
    launch: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        return machine_for(self.machine).is_terminal(self.state)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["terminal"] = self.terminal
        return data


@dataclass(frozen=True)
class JobEvent:
    """One event of a job: ``type`` is ``transition`` (``event``, ``from_state``, ``to_state``
    set), ``log``, ``monitor`` or a kind's own type. ``seq`` starts at 1 and has no gaps."""

    job_id: str
    seq: int
    at: float
    type: str
    event: str
    from_state: str | None
    to_state: str | None
    payload: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
