"""The job state machine as data: lookups, guards, registry, rendering, consistency checks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay.core.errors import InvalidInput, InvalidTransition, UnknownStateMachine
from assay.jobs.fsm import (
    JOB_MACHINE,
    State,
    StateMachine,
    Transition,
    machine_for,
    machines,
    register_machine,
)

EXPECTED_CODES = {
    "CREATED": 1,
    "QUEUED": 10,
    "PROVISIONING": 20,
    "RUNNING": 40,
    "PUBLISHING": 60,
    "FINISHED": 70,
    "PROVISION_FAILED": 31,
    "FAILED": 41,
    "TIMED_OUT": 42,
    "STOPPED": 43,
}


def test_job_machine_has_the_agreed_states_and_codes() -> None:
    assert {s.name: s.code for s in JOB_MACHINE.states} == EXPECTED_CODES
    assert JOB_MACHINE.terminal_states() == {
        "FINISHED",
        "PROVISION_FAILED",
        "FAILED",
        "TIMED_OUT",
        "STOPPED",
    }
    assert JOB_MACHINE.initial == "CREATED"
    assert machine_for("job") is JOB_MACHINE


@pytest.mark.parametrize(
    ("current", "event", "target"),
    [
        ("CREATED", "queue", "QUEUED"),
        ("QUEUED", "provision", "PROVISIONING"),
        ("CREATED", "run", "RUNNING"),
        ("RUNNING", "publish", "PUBLISHING"),
        ("PUBLISHING", "finish", "FINISHED"),
        ("QUEUED", "fail", "FAILED"),
        ("PROVISIONING", "time_out", "TIMED_OUT"),
        ("RUNNING", "stop", "STOPPED"),
        ("RUNNING", "requeue", "QUEUED"),
        ("PROVISIONING", "provision_fail", "PROVISION_FAILED"),
    ],
)
def test_allowed_transitions(current: str, event: str, target: str) -> None:
    assert JOB_MACHINE.target(current, event) == target


@pytest.mark.parametrize(
    ("current", "event"),
    [("FINISHED", "stop"), ("CREATED", "finish"), ("QUEUED", "publish"), ("STOPPED", "run")],
)
def test_refused_transitions_name_event_and_state(current: str, event: str) -> None:
    with pytest.raises(InvalidTransition) as caught:
        JOB_MACHINE.target(current, event)
    assert event in caught.value.message and current in caught.value.message
    assert caught.value.code == "invalid_transition" and caught.value.exit_code == 4


def test_unknown_event_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="no event 'explode'"):
        JOB_MACHINE.target("RUNNING", "explode")


def test_unknown_machine() -> None:
    with pytest.raises(UnknownStateMachine, match="no state machine named 'nope'"):
        machine_for("nope")


def _small_machine(name: str, extra_state: str = "DONE") -> StateMachine:
    return StateMachine(
        name=name,
        states=(State("NEW", 1, False, "new"), State(extra_state, 2, True, "done")),
        transitions=(Transition("close", frozenset({"NEW"}), extra_state),),
        initial="NEW",
    )


def test_register_machine_and_refuse_a_different_one_under_the_same_name() -> None:
    machine = _small_machine("test_small")
    register_machine(machine)
    register_machine(machine)  # idempotent
    assert machine_for("test_small") is machine
    assert "test_small" in machines()
    with pytest.raises(InvalidInput, match="different state machine"):
        register_machine(_small_machine("test_small", extra_state="CLOSED"))


@pytest.mark.parametrize(
    "build",
    [
        lambda: StateMachine("bad", (State("A", 1, False, ""), State("A", 2, True, "")), (), "A"),
        lambda: StateMachine("bad", (State("A", 1, False, ""), State("B", 1, True, "")), (), "A"),
        lambda: StateMachine("bad", (State("A", 1, False, ""),), (), "Z"),
        lambda: StateMachine(
            "bad", (State("A", 1, False, ""),), (Transition("go", frozenset({"A"}), "Z"),), "A"
        ),
        lambda: StateMachine(
            "bad",
            (State("A", 1, False, ""), State("B", 2, True, "")),
            (Transition("back", frozenset({"B"}), "A"),),
            "A",
        ),
    ],
    ids=["duplicate-name", "duplicate-code", "bad-initial", "unknown-target", "leaves-terminal"],
)
def test_inconsistent_machines_are_refused(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput):
        build()


def test_mermaid_and_dot_draw_every_edge() -> None:
    mermaid = JOB_MACHINE.to_mermaid()
    dot = JOB_MACHINE.to_dot()
    assert mermaid.startswith("stateDiagram-v2")
    assert dot.startswith('digraph "job"')
    edges = [(s, t.target, t.event) for t in JOB_MACHINE.transitions for s in t.sources]
    assert len(edges) == 25
    for source, target, event in edges:
        assert f"{source} --> {target}: {event}" in mermaid
        assert f'"{source}" -> "{target}" [label="{event}"];' in dot
    assert mermaid.count("--> [*]") == len(JOB_MACHINE.terminal_states())


def test_as_dict_is_json_and_complete() -> None:
    data = json.loads(json.dumps(JOB_MACHINE.as_dict()))
    assert [s["name"] for s in data["states"]] == [s.name for s in JOB_MACHINE.states]
    assert {e["event"] for e in data["events"]} == set(JOB_MACHINE.events())
    assert "| RUNNING | 40 |" in JOB_MACHINE.states_table()


EVENTS = st.sampled_from([*JOB_MACHINE.events(), "bogus"])


@given(st.lists(EVENTS, max_size=30))
def test_random_event_sequences_stay_in_declared_states(events: list[str]) -> None:
    state = JOB_MACHINE.initial
    declared = {s.name for s in JOB_MACHINE.states}
    for event in events:
        try:
            new = JOB_MACHINE.target(state, event)
        except InvalidTransition:
            continue
        assert not JOB_MACHINE.is_terminal(state), "a terminal state was left"
        assert new in declared
        state = new
