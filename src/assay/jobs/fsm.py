"""State machines declared as data: states with numeric codes, events from states to a state.

One declaration is read by the code (``fire`` in ``assay.jobs.store`` guards every update with
``StateMachine.sources``), the docs (``as_dict``, the states table in docs/jobs.md) and the
diagrams (``to_mermaid``, ``to_dot``). ``JOB_MACHINE`` is the machine of every job kind the job
layer runs; a domain package registers its own machine (say, managed pipeline jobs with
curation states) with ``register_machine`` and names it when creating its jobs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from assay.core.errors import InvalidInput, InvalidTransition, UnknownStateMachine


@dataclass(frozen=True)
class State:
    name: str
    code: int
    terminal: bool
    description: str


@dataclass(frozen=True)
class Transition:
    event: str
    sources: frozenset[str]
    target: str


@dataclass(frozen=True)
class StateMachine:
    """A finite state machine as data; checked consistent when built.

    Each event names one transition (sources -> target). Terminal states have no outgoing
    transitions except through the special ``recreate`` (see ``assay.jobs.store.create_job``
    with ``force=True``), which is not an event of the machine.
    """

    name: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    initial: str
    _by_name: dict[str, State] = field(init=False, repr=False, compare=False)
    _by_event: dict[str, Transition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, State] = {}
        codes: set[int] = set()
        for state in self.states:
            if state.name in by_name or state.code in codes:
                raise InvalidInput(
                    f"state machine {self.name!r}: state {state.name!r} or code {state.code} "
                    "declared twice"
                )
            by_name[state.name] = state
            codes.add(state.code)
        if self.initial not in by_name:
            raise InvalidInput(f"state machine {self.name!r}: unknown initial {self.initial!r}")
        by_event: dict[str, Transition] = {}
        for transition in self.transitions:
            if transition.event in by_event:
                raise InvalidInput(
                    f"state machine {self.name!r}: event {transition.event!r} declared twice"
                )
            unknown = (set(transition.sources) | {transition.target}) - set(by_name)
            if unknown:
                raise InvalidInput(
                    f"state machine {self.name!r}: event {transition.event!r} names unknown "
                    f"states {sorted(unknown)}"
                )
            terminal_sources = sorted(s for s in transition.sources if by_name[s].terminal)
            if terminal_sources:
                raise InvalidInput(
                    f"state machine {self.name!r}: event {transition.event!r} leaves terminal "
                    f"states {terminal_sources}"
                )
            by_event[transition.event] = transition
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_by_event", by_event)

    # -- reading -------------------------------------------------------------------------------
    def state(self, name: str) -> State:
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidInput(f"state machine {self.name!r} has no state {name!r}") from None

    def has_state(self, name: str) -> bool:
        return name in self._by_name

    def events(self) -> tuple[str, ...]:
        return tuple(t.event for t in self.transitions)

    def transition(self, event: str) -> Transition:
        try:
            return self._by_event[event]
        except KeyError:
            raise InvalidTransition(
                f"state machine {self.name!r} has no event {event!r} "
                f"(events: {', '.join(self.events())})",
                {"event": event, "machine": self.name},
            ) from None

    def sources(self, event: str) -> frozenset[str]:
        return self.transition(event).sources

    def target(self, current: str, event: str) -> str:
        """The state ``event`` leads to from ``current``; ``InvalidTransition`` when not allowed."""
        transition = self.transition(event)
        if current not in transition.sources:
            raise InvalidTransition(
                f"cannot {event} a job that is {current}"
                + (" (already finished)" if self.is_terminal(current) else "")
                + f"; {event} is allowed from {', '.join(sorted(transition.sources))}",
                {"event": event, "state": current, "machine": self.name},
            )
        return transition.target

    def is_terminal(self, name: str) -> bool:
        return self.state(name).terminal

    def terminal_states(self) -> frozenset[str]:
        return frozenset(s.name for s in self.states if s.terminal)

    def active_states(self) -> frozenset[str]:
        return frozenset(s.name for s in self.states if not s.terminal)

    # -- rendering -----------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "initial": self.initial,
            "states": [
                {
                    "name": s.name,
                    "code": s.code,
                    "terminal": s.terminal,
                    "description": s.description,
                }
                for s in self.states
            ],
            "events": [
                {"event": t.event, "from": sorted(t.sources), "to": t.target}
                for t in self.transitions
            ],
        }

    def to_mermaid(self) -> str:
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        for transition in self.transitions:
            for source in sorted(transition.sources):
                lines.append(f"    {source} --> {transition.target}: {transition.event}")
        for state in self.states:
            if state.terminal:
                lines.append(f"    {state.name} --> [*]")
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        lines = [f'digraph "{self.name}" {{', "    rankdir=LR;", "    node [shape=box];"]
        for state in self.states:
            shape = "doublecircle" if state.terminal else "box"
            lines.append(
                f'    "{state.name}" [label="{state.name} ({state.code})", shape={shape}];'
            )
        lines.append('    "__start" [shape=point];')
        lines.append(f'    "__start" -> "{self.initial}";')
        for transition in self.transitions:
            for source in sorted(transition.sources):
                lines.append(
                    f'    "{source}" -> "{transition.target}" [label="{transition.event}"];'
                )
        lines.append("}")
        return "\n".join(lines) + "\n"

    def states_table(self) -> str:
        """A Markdown table of states and the events that leave each (for docs)."""
        rows = ["| state | code | terminal | events out | meaning |", "|---|---|---|---|---|"]
        for state in self.states:
            out = [f"{t.event} → {t.target}" for t in self.transitions if state.name in t.sources]
            rows.append(
                f"| {state.name} | {state.code} | {'yes' if state.terminal else ''} | "
                f"{', '.join(out)} | {state.description} |"
            )
        return "\n".join(rows) + "\n"


def _states(*rows: tuple[str, int, bool, str]) -> tuple[State, ...]:
    return tuple(
        State(name, code, terminal, description) for name, code, terminal, description in rows
    )


_ACTIVE = ("CREATED", "QUEUED", "PROVISIONING", "RUNNING", "PUBLISHING")

JOB_MACHINE = StateMachine(
    name="job",
    states=_states(
        ("CREATED", 1, False, "recorded; not yet given to an executor"),
        ("QUEUED", 10, False, "waiting for a free slot in its environment (FIFO)"),
        ("PROVISIONING", 20, False, "inputs being staged into the job's working dir"),
        ("RUNNING", 40, False, "the job's process (or function) runs"),
        ("PUBLISHING", 60, False, "outputs being indexed and committed on the control side"),
        ("FINISHED", 70, True, "ran to the end; result recorded"),
        ("PROVISION_FAILED", 31, True, "inputs could not be staged"),
        ("FAILED", 41, True, "the job raised, exited non-zero, or its supervisor died"),
        ("TIMED_OUT", 42, True, "ran past its environment's max_duration_s"),
        ("STOPPED", 43, True, "stopped on request (never reported as finished)"),
    ),
    transitions=(
        Transition("queue", frozenset({"CREATED"}), "QUEUED"),
        Transition("provision", frozenset({"QUEUED", "CREATED"}), "PROVISIONING"),
        Transition("provision_fail", frozenset({"PROVISIONING"}), "PROVISION_FAILED"),
        Transition("run", frozenset({"PROVISIONING", "QUEUED", "CREATED"}), "RUNNING"),
        Transition("publish", frozenset({"RUNNING"}), "PUBLISHING"),
        Transition("finish", frozenset({"RUNNING", "PUBLISHING"}), "FINISHED"),
        Transition("fail", frozenset(_ACTIVE), "FAILED"),
        Transition("time_out", frozenset({"RUNNING", "PROVISIONING", "PUBLISHING"}), "TIMED_OUT"),
        Transition("stop", frozenset(_ACTIVE), "STOPPED"),
        Transition("requeue", frozenset({"PROVISIONING", "RUNNING"}), "QUEUED"),
    ),
    initial="CREATED",
)

_registry: dict[str, StateMachine] = {JOB_MACHINE.name: JOB_MACHINE}
_registry_lock = threading.Lock()


def register_machine(machine: StateMachine) -> None:
    """Make ``machine`` known by name (idempotent for the same machine; a different machine under
    a taken name is refused, so two packages cannot silently disagree)."""
    with _registry_lock:
        existing = _registry.get(machine.name)
        if existing is not None and existing != machine:
            raise InvalidInput(f"a different state machine named {machine.name!r} is registered")
        _registry[machine.name] = machine


def machine_for(name: str) -> StateMachine:
    with _registry_lock:
        machine = _registry.get(name)
    if machine is None:
        raise UnknownStateMachine(
            f"no state machine named {name!r} is registered (known: {', '.join(sorted(_registry))})"
        )
    return machine


def machines() -> dict[str, StateMachine]:
    """Every registered machine by name."""
    with _registry_lock:
        return dict(_registry)
