"""The plain record of a managed pipeline job: the job layer's record plus its spec, unpacked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay.jobs.records import JobRecord


@dataclass(frozen=True)
class PipelineJob:
    uuid: str
    pipeline_uuid: str
    state: str
    state_code: int
    archive_path: str  # logical: /products/v2/...
    local_path: str  # the folder under the products root
    child_of: tuple[str, ...]
    linkage_kind: str  # experiment | sample | measurement
    acted_on: tuple[str, ...]
    acted_using: tuple[str, ...]
    generated_by: tuple[str, ...]
    data: dict[str, Any]
    archive_patterns: tuple[dict[str, Any], ...]
    product_patterns: tuple[dict[str, Any], ...]
    agent: str | None
    task: str | None
    session: str | None
    instanced: bool
    created: float
    updated: float
    error: str | None
    result: dict[str, Any] | None
    deleted: bool = False

    @classmethod
    def from_job(cls, job: JobRecord, deleted: bool = False) -> PipelineJob:
        spec = job.spec
        return cls(
            uuid=job.job_id,
            pipeline_uuid=spec["pipeline_uuid"],
            state=job.state,
            state_code=job.state_code,
            archive_path=spec["archive_path"],
            local_path=spec["local_path"],
            child_of=tuple(spec["child_of"]),
            linkage_kind=spec["linkage_kind"],
            acted_on=tuple(spec.get("acted_on", [])),
            acted_using=tuple(spec.get("acted_using", [])),
            generated_by=tuple(spec.get("generated_by", [])),
            data=dict(spec.get("data") or {}),
            archive_patterns=tuple(spec.get("archive_patterns", [])),
            product_patterns=tuple(spec.get("product_patterns", [])),
            agent=spec.get("agent"),
            task=spec.get("task"),
            session=spec.get("session"),
            instanced=bool(spec.get("instanced")),
            created=job.created,
            updated=job.updated,
            error=job.error,
            result=job.result,
            deleted=deleted,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "pipeline_uuid": self.pipeline_uuid,
            "state": self.state,
            "state_code": self.state_code,
            "archive_path": self.archive_path,
            "local_path": self.local_path,
            "child_of": list(self.child_of),
            "linkage_kind": self.linkage_kind,
            "acted_on": list(self.acted_on),
            "acted_using": list(self.acted_using),
            "generated_by": list(self.generated_by),
            "data": self.data,
            "archive_patterns": list(self.archive_patterns),
            "product_patterns": list(self.product_patterns),
            "agent": self.agent,
            "task": self.task,
            "session": self.session,
            "instanced": self.instanced,
            "created": self.created,
            "updated": self.updated,
            "error": self.error,
            "result": self.result,
            "deleted": self.deleted,
        }
