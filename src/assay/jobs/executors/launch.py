"""What an executor needs to start a job: argv, working dir, environment, inputs, custom data.

The launch spec is stored as JSON on the job's row, so a job re-queued by reconciliation can be
adopted and started by the next executor of its environment. Environment variables given here
are stored in the catalog: pass no secrets through ``env``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.jobs._json import dumps
from assay.jobs.records import JobRecord


@dataclass
class Launch:
    """How to start one job; stored on the job row (``jobs.launch``) so a re-queued job can
    be started again by another process."""

    job_id: str
    argv: list[str]
    workdir: Path
    env: dict[str, str]
    inputs: dict[str, Path]
    custom_data: Any

    def as_json(self) -> str:
        return dumps(
            {
                "argv": self.argv,
                "workdir": str(self.workdir),
                "env": self.env,
                "inputs": {k: str(v) for k, v in self.inputs.items()},
                "custom_data": self.custom_data,
            }
        )

    @classmethod
    def from_record(cls, record: JobRecord) -> Launch:
        spec = record.launch or {}
        return cls(
            record.job_id,
            list(spec["argv"]),
            Path(spec["workdir"]),
            dict(spec.get("env") or {}),
            {k: Path(v) for k, v in (spec.get("inputs") or {}).items()},
            spec.get("custom_data"),
        )
