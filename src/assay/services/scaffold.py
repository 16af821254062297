"""``assay init service NAME``: a new service folder that runs and tests out of the box."""

from __future__ import annotations

import os
import re
from pathlib import Path

from assay.core.errors import Conflict, InvalidServiceConfig
from assay.services.images import DOCKERFILE, dockerfile_text

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")

_APP = '''"""The {name} service: doubles a number (replace this with your analysis)."""

import logging

logger = logging.getLogger(__name__)


def run(analysis):
    """Read validated inputs from ``analysis`` and set its outputs."""
    n = analysis.input_values["n"]
    factor = analysis.configuration_values["factor"]
    logger.info("multiplying %s by %s", n, factor)
    analysis.output_values = {{"result": n * factor}}
'''

_TWINE = """{
  "configuration_values_schema": {
    "type": "object",
    "properties": {"factor": {"type": "integer", "minimum": 1}},
    "required": ["factor"]
  },
  "input_values_schema": {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 0}},
    "required": ["n"]
  },
  "output_values_schema": {
    "type": "object",
    "properties": {"result": {"type": "integer"}},
    "required": ["result"]
  }
}
"""

_CONFIG = """services:
  - name: {name}
    namespace: {namespace}
    tag: 0.1.0
    app_source_path: .
    twine_path: twine.json
    configuration_values:
      factor: 2
"""

_TEST = '''"""Tests of the {name} service: in this process (Runner) and as a question (Child)."""

from pathlib import Path

import pytest

from assay.core.errors import InvalidStrand
from assay.services import Child, Runner

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _assay_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "assay-home"))
    monkeypatch.delenv("ASSAY_CATALOG_URL", raising=False)


def test_{module}_doubles():
    analysis = Runner.from_config(HERE).run(input_values={{"n": 21}})
    assert analysis.output_values == {{"result": 42}}


def test_{module}_refuses_a_negative_number():
    with pytest.raises(InvalidStrand, match="input_values.n"):
        Runner.from_config(HERE).run(input_values={{"n": -1}})


def test_{module}_answers_a_question():
    child = Child("{namespace}/{name}:0.1.0", backend={{"name": "local", "path": str(HERE)}})
    answer, _ = child.ask(input_values={{"n": 5}}, timeout=60)
    assert answer["output_values"] == {{"result": 10}}
'''

_README = """# {name}

An Assay service: `app.py` (the analysis), `twine.json` (its data interface), `assay.yaml`
(its configuration).

```sh
assay run --input-values '{{"n": 21}}'     # run it here, as a question; prints the answer
pytest test_{module}_service.py            # its tests
```

From Python:

```python
from assay.services import Child, Runner

Runner.from_config(".").run(input_values={{"n": 21}}).output_values
Child("{namespace}/{name}:0.1.0", backend={{"name": "local", "path": "."}}).ask(input_values={{"n": 21}})
```
"""


def init_service(
    name: str, folder: str | os.PathLike[str] | None = None, namespace: str = "local"
) -> Path:
    """Write a new service into ``folder`` (default ``./NAME``); returns the folder.

    Refuses a folder that exists and is not empty, before writing anything.
    """
    for label, value in (("name", name), ("namespace", namespace)):
        if not _NAME.match(value):
            raise InvalidServiceConfig(
                f"invalid service {label} {value!r}: use lower-case letters, digits and '-', "
                "starting and ending with a letter or digit"
            )
    target = Path(folder if folder is not None else name).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"{target} already exists and is not empty: choose another folder")
    module = name.replace("-", "_")
    values = {"name": name, "namespace": namespace, "module": module}
    files = {
        "app.py": _APP.format(**values),
        "twine.json": _TWINE,
        "assay.yaml": _CONFIG.format(**values),
        f"test_{module}_service.py": _TEST.format(**values),
        "README.md": _README.format(**values),
        DOCKERFILE: dockerfile_text(name, kind="service"),
    }
    target.mkdir(parents=True, exist_ok=True)
    for filename, text in files.items():
        temporary = target / f".{filename}.tmp"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target / filename)
    return target
