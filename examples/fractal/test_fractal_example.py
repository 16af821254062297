"""The fractal example: values only, run in this process and asked as a question."""

from pathlib import Path

import pytest

from assay.core.errors import InvalidStrand
from assay.services import Child, Runner

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _assay_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "assay-home"))
    monkeypatch.delenv("ASSAY_CATALOG_URL", raising=False)


def test_fractal_renders_the_configured_grid():
    analysis = Runner.from_config(HERE).run(input_values={})
    counts = analysis.output_values["escape_counts"]
    assert len(counts) == 12 and all(len(row) == 24 for row in counts)
    assert analysis.output_values["points_inside"] > 0


def test_fractal_as_a_question_with_monitor_messages():
    messages = []
    child = Child("examples/fractal:0.1.0", backend={"name": "local", "path": str(HERE)})
    answer, _ = child.ask(
        input_values={"julia_c": [-0.8, 0.156]}, handle_monitor_message=messages.append, timeout=60
    )
    assert messages == [{"progress": 1.0}]
    assert len(answer["output_values"]["escape_counts"]) == 12


def test_fractal_refuses_an_unknown_input():
    with pytest.raises(InvalidStrand, match="input_values: Additional properties"):
        Runner.from_config(HERE).run(input_values={"zoom": 2})
