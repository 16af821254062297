"""Property: random event sequences fired at a real catalog never reach an undeclared state,
never leave a terminal state, and leave gap-free event numbers that replay to the job's state."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.core.errors import InvalidTransition
from assay.jobs import store
from assay.jobs.fsm import JOB_MACHINE
from assay.jobs.ids import job_id

_counter = itertools.count()
ACTIONS = st.lists(
    st.one_of(
        st.sampled_from(JOB_MACHINE.events()).map(lambda e: ("fire", e)),
        st.just(("log", "")),
        st.just(("stop", "")),
        st.just(("beat", "")),
    ),
    max_size=15,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=ACTIONS)
def test_random_sequences_keep_the_job_consistent(
    assay_home: Path, actions: list[tuple[str, str]]
) -> None:
    jid = job_id("prop", next(_counter))
    store.create_job("compute", jid, spec={})
    state = "CREATED"
    declared = {s.name for s in JOB_MACHINE.states}
    for action, event in actions:
        if action == "fire":
            try:
                state = store.fire(jid, event).state
            except InvalidTransition:
                assert store.get_job(jid).state == state
        elif action == "log":
            store.append_event(jid, "log", {"message": "m"})
        elif action == "beat":
            store.heartbeat(jid)
        else:
            try:
                state = store.request_stop(jid).state
            except InvalidTransition:
                assert JOB_MACHINE.is_terminal(state)
        assert state in declared
    record = store.get_job(jid)
    assert record.state == state and record.state_code == JOB_MACHINE.state(state).code
    events = store.list_events(jid)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    # Replaying the transition events reproduces the state, each from where the last one left.
    replay = None
    for event in (e for e in events if e.type == "transition"):
        assert event.from_state == replay
        if replay is not None:
            assert JOB_MACHINE.target(replay, event.event) == event.to_state
        replay = event.to_state
    assert replay == state
