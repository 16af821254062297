"""docs/pipelinejobs.md shows the machine the code declares (generated, never hand-kept)."""

from __future__ import annotations

import re
from pathlib import Path

from assay.pjobs.machine import PIPELINEJOB_MACHINE, info_events_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "pipelinejobs.md"


def _between(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"docs/pipelinejobs.md lacks the {name} markers"
    return match.group(1)


def test_states_events_and_diagram_match_the_machine() -> None:
    text = DOC.read_text()
    assert _between(text, "states") == PIPELINEJOB_MACHINE.states_table()
    assert _between(text, "info") == info_events_table()
    assert _between(text, "mermaid") == "```mermaid\n" + PIPELINEJOB_MACHINE.to_mermaid() + "```\n"
