"""The question handler that job workers run: ``python -m assay.jobs.worker
assay.services.answer:answer``.

``answer(task, channel, cache)`` runs the question's service (a ``Runner``) and returns
``("result" | "exception", payload, code hash)``. Output datasets are NOT committed here: the
result names them as local folders (kept until the asker has published them, see
``assay.services.publishing``), so the asking side commits every output bundle and the
question's outcome in one transaction. A pool worker keeps its Runner (app imported, twine
compiled) in ``cache`` for the next question to the same service, handing each question a fresh
copy of the configuration values.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from assay.jobs.payloads import exception_payload


def _runner(question: dict[str, Any], cache: dict[str, Any] | None) -> Any:
    from assay.services.config import ServiceConfig
    from assay.services.runner import Runner

    if cache is None:  # a fresh process; forked, it may have the server's twine (warm_for)
        from assay.services.twine import load_twine

        config = ServiceConfig.from_primitive(question["service"])
        return Runner.from_config(config, twine=load_twine(config.twine_path))
    key = json.dumps(question["service"], sort_keys=True, default=str)
    cached = cache.get(key)
    if cached is None:
        runner = Runner.from_config(ServiceConfig.from_primitive(question["service"]))
        cached = (runner, copy.deepcopy(runner.configuration_values))
        cache.clear()
        cache[key] = cached
    runner, pristine = cached
    runner.configuration_values = copy.deepcopy(pristine)
    runner._code_version = None  # git commit and dirty flag are read again for new outputs
    return runner


def answer(
    question: dict[str, Any], channel: Any, cache: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any], str | None]:
    """Run the question's service; ``("result" | "exception", payload, code hash)``."""
    try:
        runner = _runner(question, cache)
        runner.commit_outputs = False  # the asker publishes them (one transaction)
        analysis = runner.run(
            input_values=question.get("input_values"),
            input_manifest=question.get("input_manifest"),
            children=question.get("children"),
            handle_monitor_message=lambda data: channel.send("monitor_message", {"data": data}),
            question_uuid=question["question_uuid"],
            parent_question_uuid=question.get("parent_question_uuid"),
            originator_question_uuid=question.get("originator_question_uuid"),
        )
        output_manifest = analysis.output_manifest
        payload: dict[str, Any] = {
            "output_values": analysis.output_values,
            "output_manifest": output_manifest.serialise() if output_manifest else None,
        }
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as error:
            from assay.core.errors import InvalidStrand

            raise InvalidStrand(
                f"output_values: not JSON ({error}); outputs must be JSON values",
                details={"strand": "output_values", "path": "output_values", "rule": "json"},
            ) from None
        if output_manifest is not None and _has_local_datasets(output_manifest):
            payload["publish"] = {
                "code_version": runner.code_version(),
                "scratch": analysis._output_dir,
            }
        elif analysis._output_dir is not None:
            analysis._close()
        return "result", payload, runner.code_hash
    except BaseException as error:  # everything the app does wrong is reported
        return "exception", exception_payload(error), None


def _has_local_datasets(manifest: Any) -> bool:
    return any(
        reference.kind in ("local", "dataset")
        or (reference.kind == "url" and reference.protocol == "file")
        for reference in manifest.references.values()
    )


def warm_up() -> None:
    """Import what a question needs before it arrives (a pool worker, a fork server)."""
    import assay.services.runner  # noqa: F401
    from assay.services import twine

    twine._lib()
    twine._twine_validator()


def warm_for(twine_path: str) -> None:
    """In a fork server, after a question to a service: load its twine (``twine.load_twine``),
    so that its children find it compiled rather than each loading and checking it (a changed
    file is loaded again). The app is not imported."""
    from pathlib import Path

    from assay.services.twine import load_twine

    load_twine(Path(twine_path))
