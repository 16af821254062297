"""A job's writes from its supervisor, batched: transitions, events, heartbeats, side rows.

``JobRecorder`` holds what a supervisor records about one job (its creation, transitions, log
and monitor events, ``last_seen`` touches, a kind's own side-table writes) and writes it in
ONE transaction at the next flush, in the order it was recorded. A flush happens when the
outcome is recorded (``fire(..., flush=True)``), when something other than a heartbeat has
waited ``FLUSH_SECONDS`` or ``FLUSH_EVENTS`` events are pending, and every ``TOUCH_SECONDS``
for heartbeats alone. So a quick job costs one transaction, and a running one shows in the
catalog within a quarter of a second.

Transitions stay guarded: each is ``store.fire_in`` inside the flush's transaction. A transition
that the job's state no longer allows (another process stopped or reconciled it first) does not
roll back the events recorded before it: the flush writes them, then raises the
``InvalidTransition`` (a lost race is visible, never silent). Each flush also reads the job's
row back, so ``stop_requested`` costs the supervisor no extra query while it is writing anyway;
``poll()`` reads it when nothing is pending.

At most ``max_log_events`` ``log`` events are stored per job; the rest are counted and one
``log`` event saying how many were dropped is written before the job's terminal transition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import job_queries
from assay.core.errors import InvalidTransition
from assay.jobs import batched, store
from assay.jobs.fsm import machine_for
from assay.jobs.records import JobRecord

FLUSH_SECONDS = 0.25
FLUSH_EVENTS = 500
TOUCH_SECONDS = 5.0
MAX_LOG_EVENTS = 10_000

SideWrite = Callable[[Connection], None]


class JobRecorder:
    """Batched writer for one job (thread-safe). See the module docstring for the contract."""

    def __init__(
        self,
        job_id: str,
        workspace: Workspace | None = None,
        max_log_events: int = MAX_LOG_EVENTS,
    ) -> None:
        self.job_id = job_id
        self.workspace = workspace or open_workspace()
        self.max_log_events = max_log_events
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ops: list[tuple[str, Any]] = []
        self._events: list[tuple[str, dict[str, Any], float | None]] = []
        self._touch = False
        self._dirty_since: float | None = None
        self._last_flush = time.monotonic()
        self._log_events = 0
        self.dropped_log_events = 0
        self._marker_added = False
        self._created = False
        self._terminal_machine: str = "job"
        self._state: str | None = None  # the job's state as this recorder last left or read it
        #: The job as last read (after the last flush or poll); None before the first write.
        self.record: JobRecord | None = None

    # -- recording --------------------------------------------------------------------------
    def create(
        self,
        kind: str,
        *,
        spec: dict[str, Any],
        machine: str = "job",
        environment: str = "local",
        owner: str = "",
        parent_job_id: str | None = None,
        payload: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        side: SideWrite | None = None,
        write: bool = True,
    ) -> None:
        """The job's row and its ``create`` event (and the kind's ``side`` row): written now in
        one transaction, or with ``write=False`` held for the next flush."""
        self._terminal_machine = machine
        arguments = {
            "kind": kind,
            "spec": spec,
            "machine": machine,
            "environment": environment,
            "owner": owner,
            "parent_job_id": parent_job_id,
            "payload": payload,
            "fields": fields,
        }
        with self._lock:
            self._ops.append(("create", arguments))
            if side is not None:
                self._ops.append(("side", side))
            self._mark_dirty()
        if write:
            self.flush()

    def add(self, type_: str, payload: dict[str, Any], at: float | None = None) -> None:
        """Queue a non-transition event (``log``, ``monitor``, a kind's own type)."""
        with self._lock:
            if type_ == "log":
                self._log_events += 1
                if self._log_events > self.max_log_events:
                    self.dropped_log_events += 1
                    return
            self._events.append((type_, payload, at))
            self._mark_dirty()
            due = len(self._events) >= FLUSH_EVENTS
        if due or self._due():
            self.flush()

    def side(self, write: SideWrite) -> None:
        """Queue a write of the kind's own rows, run in order inside the next flush."""
        with self._lock:
            self._move_events_to_ops()
            self._ops.append(("side", write))
            self._mark_dirty()

    def touch(self) -> None:
        """Note that the supervisor and worker are alive: ``last_seen`` at the next flush (at
        the latest ``TOUCH_SECONDS`` from the last one), never an event row."""
        with self._lock:
            self._touch = True

    def fire(
        self,
        event: str,
        *,
        payload: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        fields: dict[str, Any] | None = None,
        flush: bool = False,
        side: SideWrite | None = None,
    ) -> JobRecord | None:
        """Queue a guarded transition (and a ``side`` write in the same transaction); with
        ``flush`` write everything now and return the job as it is after. Raises
        ``InvalidTransition`` (from the flush) when the job's state did not allow it."""
        terminal = machine_for(self._terminal_machine).is_terminal(
            machine_for(self._terminal_machine).transition(event).target
        )
        with self._lock:
            if terminal:
                self._add_dropped_marker()
            self._move_events_to_ops()
            self._ops.append(
                (
                    "fire",
                    {
                        "event": event,
                        "payload": payload,
                        "result": result,
                        "error": error,
                        "fields": fields,
                    },
                )
            )
            if side is not None:
                self._ops.append(("side", side))
            self._mark_dirty()
        if flush:
            return self.flush()
        return None

    # -- writing ----------------------------------------------------------------------------
    def flush_due_in(self) -> float | None:
        """Seconds until what is held must be written (0 or less: now); None when nothing is."""
        with self._lock:
            if self._dirty_since is not None:
                return self._dirty_since + FLUSH_SECONDS - time.monotonic()
            if self._touch:
                return self._last_flush + TOUCH_SECONDS - time.monotonic()
            return None

    def _due(self) -> bool:
        due_in = self.flush_due_in()
        return due_in is not None and due_in <= 0

    def flush(self) -> JobRecord | None:
        """Write what is held in one transaction; the job as read back (None if nothing was
        ever written). Raises the first ``InvalidTransition`` met, after writing the rest."""
        with self._write_lock:
            with self._lock:
                self._move_events_to_ops()
                ops, self._ops = self._ops, []
                touch, self._touch = self._touch, False
                self._dirty_since = None
                self._last_flush = time.monotonic()
            if not ops and not touch:
                return self.record
            lost: InvalidTransition | None = None
            ended = False
            rows: list[dict[str, Any]] = []  # event rows, inserted in one statement at the end
            seen_at = time.time() if touch else None  # last_seen, set by a statement we make
            with self.workspace.write() as conn:
                for op, arguments in _grouped(ops):
                    if op == "create":
                        if seen_at is not None:
                            fields = {**(arguments.get("fields") or {}), "last_seen": seen_at}
                            arguments = {**arguments, "fields": fields}
                            seen_at = None
                        batched.create_job_in(
                            conn, job_id=self.job_id, events_out=rows, **arguments
                        )
                        self._created = True
                        machine = machine_for(arguments["machine"])
                        self._state = machine.initial
                        for step in arguments.get("path") or ():
                            self._state = machine.target(self._state, step["event"])
                        ended = machine.is_terminal(self._state)
                    elif op == "events":
                        items, times = arguments
                        changes = {"last_seen": seen_at} if seen_at is not None else None
                        batched.append_events_in(
                            conn, self.job_id, items, at=times, changes=changes, events_out=rows
                        )
                        seen_at = None
                    elif op == "fires":
                        if lost is not None:
                            continue  # the race is lost: later transitions would be wrong
                        if seen_at is not None:
                            last = arguments[-1]
                            arguments[-1] = {
                                **last,
                                "fields": {**(last.get("fields") or {}), "last_seen": seen_at},
                            }
                            seen_at = None
                        try:
                            ended = self._fire(conn, arguments, rows)
                        except InvalidTransition as error:
                            lost = error
                    elif lost is None:  # a side write belongs with the transitions before it
                        arguments(conn)
                if seen_at is not None:
                    job_queries.update_job(conn, self.job_id, {"last_seen": seen_at})
                batched.insert_event_rows(conn, rows)
                if not ended:  # after our own final transition nobody needs the row again
                    self.record = batched.job_in(conn, self.job_id)
                    self._state = self.record.state if self.record is not None else None
            if lost is not None:
                raise lost
            return self.record

    def _fire(self, conn: Any, steps: list[dict[str, Any]], rows: list[dict[str, Any]]) -> bool:
        """Queued transitions in a row; True when they ended the job. From the state this
        recorder left the job in: one guarded update for all; else ``fire_in`` each (reads)."""
        machine = self._terminal_machine
        if self._state is not None:
            self._state = batched.fire_path_in(
                conn, self.job_id, self._state, steps, machine=machine, events_out=rows
            )
        else:
            for step in steps:
                self._state = store.fire_in(conn, self.job_id, **step).state
        assert self._state is not None
        return machine_for(machine).is_terminal(self._state)

    def poll(self) -> JobRecord | None:
        """Flush when due, else read the job back (cheap); the record."""
        if self._due():
            return self.flush()
        if self.record is None and not self._created:
            return None  # not written yet: nobody else can have asked it to stop
        self.record = store.get_job(self.job_id, workspace=self.workspace)
        self._state = self.record.state
        return self.record

    @property
    def stop_requested(self) -> bool:
        return bool(self.record is not None and self.record.stop_requested)

    # -- helpers (caller holds the lock) -------------------------------------------------------
    def _mark_dirty(self) -> None:
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()

    def _move_events_to_ops(self) -> None:
        if self._events:
            items = [(type_, payload) for type_, payload, _ in self._events]
            times = [at for _, _, at in self._events]
            self._ops.append(("events", (items, times)))
            self._events = []

    def _add_dropped_marker(self) -> None:
        if not self.dropped_log_events or self._marker_added:
            return
        self._marker_added = True
        self._events.append(
            (
                "log",
                {
                    "name": "assay.jobs",
                    "levelno": logging.WARNING,
                    "levelname": "WARNING",
                    "message": f"[{self.dropped_log_events} further log records were not "
                    f"stored: at most {self.max_log_events} are kept per job]",
                    "dropped": self.dropped_log_events,
                },
                None,
            )
        )


def _grouped(ops: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Transitions separated only by side writes become one ``fires`` step (one statement),
    followed by those side writes in their order; events between transitions keep them
    apart (their seqs fall between). A job created in this batch and moved at once (only side
    writes between) is inserted in the state its first transitions end in (``path``)."""
    grouped = _fires(ops)
    if len(grouped) >= 2 and grouped[0][0] == "create":
        sides = 0
        while 1 + sides < len(grouped) and grouped[1 + sides][0] == "side":
            sides += 1
        if 1 + sides < len(grouped) and grouped[1 + sides][0] == "fires":
            create = ("create", {**grouped[0][1], "path": grouped[1 + sides][1]})
            return [create, *grouped[1 : 1 + sides], *grouped[2 + sides :]]
    return grouped


def _fires(ops: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    grouped: list[tuple[str, Any]] = []
    pending_sides: list[tuple[str, Any]] = []
    for op, arguments in ops:
        if op == "fire":
            if grouped and grouped[-1][0] == "fires" and all(o == "side" for o, _ in pending_sides):
                grouped[-1][1].append(arguments)
            else:
                grouped.extend(pending_sides)
                pending_sides = []
                grouped.append(("fires", [arguments]))
            continue
        if op == "side" and grouped and grouped[-1][0] == "fires":
            pending_sides.append((op, arguments))
            continue
        grouped.extend(pending_sides)
        pending_sides = []
        grouped.append((op, arguments))
    grouped.extend(pending_sides)
    return grouped
