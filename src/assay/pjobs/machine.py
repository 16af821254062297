"""The curation life cycle of a managed pipeline job, as data (after SD2E's job FSM).

Registered with the job layer as machine ``"pipelinejob"`` when this module is imported, so
``assay jobs fsm --kind pipelinejob`` draws it and ``jobs.store.fire`` guards its events.
The job layer gives each event one target, so the three events that keep the state
(``create``, ``update``, ``resource``: SD2E's ``dest: '='``) are *info events*
(``INFO_EVENTS``): guarded by their source states in the same way and recorded as a
``transition`` event row whose from- and to-state are equal (see ``events.fire_info``).
Terminal states have no exits in the job layer, so only RETIRED is terminal; FAILED is left
only by the admin ``reset``.
"""

from __future__ import annotations

from assay.jobs.fsm import State, StateMachine, Transition, register_machine

MACHINE_NAME = "pipelinejob"

STATES = (
    State("CREATED", 1, False, "Job inputs and configuration have been defined"),
    State("RESET", 5, False, "Job and outputs are being reset for another run (admin)"),
    State("RUNNING", 40, False, "Job is actively processing data"),
    State("FAILED", 41, False, "Job did not complete successfully (admin reset re-opens it)"),
    State("FINISHED", 70, False, "Job has completed processing and outputs are archived"),
    State("INDEXING", 72, False, "Job outputs are being indexed into bundles"),
    State("VALIDATING", 80, False, "Job outputs are being assessed for correctness"),
    State("VALIDATED", 82, False, "Job outputs were determined to be correct"),
    State("REJECTED", 84, False, "Job outputs are invalid and should not be used"),
    State("FINALIZED", 90, False, "Job outputs are validated and ready for general use"),
    State("RETIRED", 99, True, "Job and outputs should no longer be used"),
)

#: Events that keep the state: event -> (source states, description).
INFO_EVENTS: dict[str, tuple[frozenset[str], str]] = {
    "create": (frozenset({"CREATED"}), "Create a new job (recorded when the job is created)"),
    "update": (
        frozenset({"RUNNING", "VALIDATING", "INDEXING"}),
        "Append an information item to the history",
    ),
    "resource": (frozenset({"CREATED", "RUNNING"}), "Note resource marshalling in the history"),
}

#: (event, sources, target, description): the transitions.
_TABLE: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("run", ("CREATED", "RUNNING"), "RUNNING", 'Mark the job as "running"'),
    ("fail", ("RUNNING", "VALIDATING", "INDEXING"), "FAILED", "Mark the job as failed"),
    ("finish", ("RUNNING", "FINISHED"), "FINISHED", "Mark the job as complete"),
    ("index", ("FINISHED", "INDEXING"), "INDEXING", "Index the job outputs"),
    ("indexed", ("FINISHED", "INDEXING"), "FINISHED", "Mark that indexing is complete"),
    ("validate", ("FINISHED", "VALIDATED"), "VALIDATING", "Mark the job as under validation"),
    ("validated", ("VALIDATING", "VALIDATED"), "VALIDATED", "Mark that validation has completed"),
    ("reject", ("VALIDATING",), "REJECTED", "Mark the outputs as unsuitable for use"),
    ("finalize", ("VALIDATED",), "FINALIZED", "Mark the job and outputs as suitable for use"),
    ("retire", ("REJECTED", "FINALIZED"), "RETIRED", "Mark the job and outputs as retired"),
    ("reset", ("FAILED", "REJECTED"), "RESET", "Begin a reset, erasing archive contents (admin)"),
    ("ready", ("RESET",), "CREATED", "Complete the reset: the job may run again (admin)"),
)

EVENT_DESCRIPTIONS = {event: description for event, _, _, description in _TABLE} | {
    event: description for event, (_, description) in INFO_EVENTS.items()
}
#: Events only an admin may send (``delete`` is not a transition: it hides the job).
ADMIN_EVENTS = frozenset({"reset", "ready", "delete"})
EVENTS = frozenset(EVENT_DESCRIPTIONS) | {"delete"}


PIPELINEJOB_MACHINE = StateMachine(
    name=MACHINE_NAME,
    states=STATES,
    transitions=tuple(Transition(e, frozenset(s), t) for e, s, t, _ in _TABLE),
    initial="CREATED",
)
register_machine(PIPELINEJOB_MACHINE)


def info_events_table() -> str:
    """The info events as a Markdown table (for docs/pipelinejobs.md)."""
    lines = ["| event | allowed in | meaning |", "|---|---|---|"]
    for event, (sources, description) in INFO_EVENTS.items():
        lines.append(f"| {event} | {', '.join(sorted(sources))} | {description} |")
    return "\n".join(lines) + "\n"
