"""Shared set-up for the compute-to-data tests: datasets, an Ocean-style script, a service."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay import api
from assay.services import registry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "compute-to-data"
OCEAN_SCRIPT = EXAMPLES / "ocean_style_algorithm.py"


def add_dataset(tmp_path: Path, context: str, name: str, files: dict[str, str]) -> str:
    """A bundle of ``files`` (relative path -> text); returns its catalog reference."""
    folder = tmp_path / "sources" / context / name
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    api.context(context)
    record = api.add(context, name, str(folder))
    return f"assay://{context}/{name}@{record.uuid}"


def raw_meta(code: str, entrypoint: str = "python $ALGO") -> dict[str, object]:
    """Ocean's AlgorithmMetadata dictionary form."""
    return {
        "meta": {
            "rawcode": textwrap.dedent(code),
            "language": "python",
            "container": {"entrypoint": entrypoint, "image": "", "tag": ""},
        }
    }


def make_service(root: Path, sruid: str = "lab/counter:1.0.0", extra: str = "") -> Path:
    """A registered service that counts the files of each input dataset."""
    namespace, rest = sruid.split("/")
    name, tag = rest.split(":")
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "twine.json").write_text(json.dumps({}))
    (folder / "assay.yaml").write_text(
        f"services:\n  - name: {name}\n    namespace: {namespace}\n    tag: {tag}\n"
    )
    (folder / "app.py").write_text(
        textwrap.dedent(
            """
            def run(analysis):
                counts = {}
                manifest = analysis.input_manifest
                if manifest is not None:
                    for key in manifest.references:
                        counts[key] = len(manifest.get_dataset(key).files)
                analysis.output_values = {"counts": counts, "values": analysis.input_values}
            """
        )
        + extra
    )
    registry.register(sruid, folder)
    return folder


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli(*args: str) -> Run:
    """The real ``assay`` command line, in-process."""
    from typer.testing import CliRunner

    from assay.cli.main import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def one_error_line(run: Run, exit_code: int) -> str:
    assert run.exit_code == exit_code, (run.exit_code, run.stdout, run.stderr)
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    return lines[0]
