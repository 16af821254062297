"""A whole pipeline as one job (kind ``pipeline``) in a named compute environment.

PRE-MERGE STAND-IN: runs the pipeline here; replaced by the job layer version.
"""

from __future__ import annotations

from typing import Any

from assay.bundles.workspace import Workspace
from assay.pipelines.apply import ApplyRequest, apply_pipeline


def run_pipeline_job(workspace: Workspace, request: ApplyRequest) -> dict[str, Any]:
    report = apply_pipeline(workspace, request)
    return {
        "job_id": None,
        "state": "FINISHED",
        "success": report.success,
        "did_work": report.did_work,
        "output_bundle_uuid": report.root_uuid,
    }
