"""docs/jobs.md shows the state machine the code declares (generated, never hand-kept)."""

from __future__ import annotations

import re
from pathlib import Path

from assay.jobs.fsm import JOB_MACHINE

DOC = Path(__file__).resolve().parents[2] / "docs" / "jobs.md"


def _between(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"docs/jobs.md lacks the {name} markers"
    return match.group(1)


def test_states_table_and_diagram_match_the_machine() -> None:
    text = DOC.read_text()
    assert _between(text, "states") == JOB_MACHINE.states_table()
    assert _between(text, "mermaid") == "```mermaid\n" + JOB_MACHINE.to_mermaid() + "```\n"
