"""Child side of the subprocess executor: ``python -m assay.pipelines.worker``.

Reads one JSON line (see ``subproc``), runs the task, asks before storing, and answers with
one JSON line: ``{"type": "stored", "uuid", "content_hash"}`` or ``{"type": "error", "error",
"traceback"}``. File descriptor 1 is kept for this protocol; the task's prints go to stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Iterator
from typing import IO, Any

from assay.bundles.workspace import open_workspace
from assay.pipelines.task import TaskBase
from assay.pipelines.taskrun import TaskRunSpec, TaskStopped, run_task


def _load_class(payload: dict[str, Any]) -> type[TaskBase]:
    for entry in reversed(payload.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    module_name = payload["module"]
    if module_name == "__main__" and payload.get("file"):
        spec = importlib.util.spec_from_file_location("__assay_task_main__", payload["file"])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    target: Any = module
    for part in payload["qualname"].split("."):
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, TaskBase)):
        raise TypeError(f"{module_name}.{payload['qualname']} is not a task class")
    return target


def _serve(channel: IO[str], answers: IO[str]) -> None:
    payload = json.loads(sys.stdin.readline())
    cls = _load_class(payload)
    task = cls(**payload["params"])
    spec = TaskRunSpec.from_dict(payload["spec"])
    task._assay_bundle_name = spec.bundle_name

    @contextlib.contextmanager
    def ask_parent() -> Iterator[None]:
        channel.write(json.dumps({"type": "store?"}) + "\n")
        channel.flush()
        if answers.readline().strip() != "go":
            raise TaskStopped("the run was stopped before this task's output was stored")
        yield

    record = run_task(open_workspace(), task, spec, ask_parent)
    channel.write(
        json.dumps({"type": "stored", "uuid": record.uuid, "content_hash": record.content_hash})
        + "\n"
    )
    channel.flush()


def main() -> int:
    # Keep the real stdout for the protocol; everything else printed goes to stderr.
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        _serve(channel, sys.stdin)
    except TaskStopped:
        return 3
    except BaseException as error:
        channel.write(
            json.dumps(
                {
                    "type": "error",
                    "error": f"{type(error).__name__}: {error}",
                    "traceback": traceback.format_exc(),
                }
            )
            + "\n"
        )
        channel.flush()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
