"""Publishing a question's answer, by the asker: the job's PUBLISHING step.

A worker answers with output values and an output manifest whose datasets may be local
folders it wrote (kept for us; see ``assay.services.answer``). With no local dataset, the
answer is the job's result: one transition ``finish``. Otherwise the job moves RUNNING ->
PUBLISHING, every output dataset's files go to the blob store, and ONE transaction writes all
the output bundles (named and tagged by ``assay.services.outputs``) together with the
transition PUBLISHING -> FINISHED and the answer that names them. A failure before that commit
leaves no bundle in the catalog (its blobs are unreferenced until ``gc``) and the question
fails; a lost race (the job was stopped or reconciled meanwhile) writes no bundle either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from assay.core.errors import InvalidTransition
from assay.core.manifest import Manifest
from assay.jobs.recorder import JobRecorder
from assay.services.config import ServiceConfig

logger = logging.getLogger(__name__)


def publish(
    recorder: JobRecorder,
    service: ServiceConfig,
    question: dict[str, Any],
    payload: dict[str, Any],
    publish_info: dict[str, Any] | None,
    before_commit: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Record the answer (publishing output datasets first); returns ``{"output_values",
    "output_manifest"}`` as recorded. Raises ``InvalidTransition`` when the job's state no
    longer allows it (another process recorded an outcome first). ``before_commit(outputs)``
    runs once the output blobs are stored and before the transaction that writes the bundles
    (a Dask worker uploads the blobs to the context's remote there); it may return the
    ``PreparedOutputs`` to write instead."""
    result = {
        "output_values": payload.get("output_values"),
        "output_manifest": payload.get("output_manifest"),
    }
    if not publish_info or not payload.get("output_manifest"):
        recorder.fire("finish", result=result, payload=payload, flush=True)
        return result
    from assay.bundles.batch import remove_views
    from assay.services.config import parse_sruid
    from assay.services.context import to_manifest
    from assay.services.outputs import prepare_outputs, write_outputs

    manifest = Manifest.deserialise(payload["output_manifest"])
    recorder.fire("publish", payload={"datasets": sorted(manifest.keys())}, flush=True)
    workspace = recorder.workspace
    pruned: list[str] = []
    with workspace.writing():
        outputs = prepare_outputs(
            manifest,
            service_name=parse_sruid(service.sruid).name,
            sruid=service.sruid,
            code_version=dict(publish_info.get("code_version") or {}),
            question_uuid=question["question_uuid"],
            input_values=question.get("input_values"),
            input_manifest=to_manifest(question.get("input_manifest"), "input_manifest"),
            configuration_manifest=to_manifest(
                service.configuration_manifest,
                "configuration_manifest",
                service.configuration_manifest_base,
            ),
            output_location=service.output_location,
            workspace=workspace,
        )
        if before_commit is not None:
            outputs = before_commit(outputs) or outputs
        result["output_manifest"] = outputs.manifest.serialise()

        def write(conn: Any) -> None:
            pruned.extend(write_outputs(conn, workspace, outputs))

        recorder.fire(
            "finish",
            result=result,
            payload={**payload, **result, "bundles": outputs.bundles},
            side=write,
            flush=True,
        )
    remove_views(workspace, pruned)
    return result


def record_failure(
    recorder: JobRecorder, question_uuid: str, event: str, payload: dict[str, Any]
) -> bool:
    """Record the question's failure (``event``: fail or time_out) and its error payload (the
    side row's ``error``, which the asker rebuilds its exception from) in one transaction.
    False when another process recorded an outcome first (it stands)."""
    from assay.catalog import question_queries
    from assay.services.events import dumps_json

    error_text = dumps_json(payload)

    def side(conn: Any) -> None:
        question_queries.update_question(conn, question_uuid, {"error": error_text})

    try:
        recorder.fire(
            event,
            payload=payload,
            error=f"{payload.get('type')}: {payload.get('message')}",
            side=side,
            flush=True,
        )
    except InvalidTransition as lost:
        logger.warning("question %s: %s", question_uuid, lost.message)
        return False
    return True
