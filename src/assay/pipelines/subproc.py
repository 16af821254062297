"""The subprocess executor: each task runs in its own Python process.

Use it when tasks must not share the interpreter (native code that leaks or crashes, the GIL,
memory to give back). The parent sends one JSON line to ``python -m assay.pipelines.worker``:
the task's module and class, its parameters as JSON (so they must have a JSON form:
``ParamNotSerializable`` otherwise, before anything runs) and the run spec. The child runs the
task and, before storing its output, asks the parent (``{"type": "store?"}``); the parent
answers ``go`` while its commit gate is open, ``stop`` once the run is being stopped, so the
subprocess executor stops as cleanly as the threads. A child the run stops while it computes is
killed (its own process group). The child's stdout is the protocol channel: whatever the task
prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import IO, Any

from assay.bundles.workspace import Workspace
from assay.pipelines.graph import TaskNode
from assay.pipelines.taskrun import CommitGate, TaskRunSpec, TaskStopped


class RemoteTaskError(Exception):
    """The task failed in its subprocess; ``remote_traceback`` is the child's traceback."""

    def __init__(self, message: str, remote_traceback: str | None) -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback


def payload_for(node: TaskNode, spec: TaskRunSpec) -> dict[str, Any]:
    cls = type(node.task)
    module = sys.modules.get(cls.__module__)
    return {
        "module": cls.__module__,
        "qualname": cls.__qualname__,
        "file": getattr(module, "__file__", None),
        "sys_path": [p for p in sys.path if p],
        "params": node.task.param_json(),
        "spec": spec.as_dict(),
    }


def launch(
    workspace: Workspace, node: TaskNode, spec: TaskRunSpec, gate: CommitGate
) -> dict[str, Any]:
    """Run one task in a child process; returns ``{"uuid", "content_hash"}`` or raises."""
    if gate.closed:
        raise TaskStopped("the run was stopped before this task started")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p])
    process = subprocess.Popen(
        [sys.executable, "-m", "assay.pipelines.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,  # the task's own output and logs go where an in-process task's would
        text=True,
        env=env,
        start_new_session=True,  # Ctrl-C reaches the parent only; the parent decides
    )
    assert process.stdin is not None and process.stdout is not None
    key = id(process)
    gate.on_close(key, lambda: _kill(process))
    try:
        process.stdin.write(json.dumps(payload_for(node, spec)) + "\n")
        process.stdin.flush()
        return _converse(process, process.stdin, process.stdout, gate)
    finally:
        gate.on_close(key, None)
        if process.poll() is None:
            _kill(process)
        process.wait()


def _converse(
    process: subprocess.Popen[str],
    stdin: IO[str],
    stdout: IO[str],
    gate: CommitGate,
) -> dict[str, Any]:
    for line in stdout:
        message = json.loads(line)
        kind = message.get("type")
        if kind == "store?":
            try:
                with gate.storing():
                    stdin.write("go\n")
                    stdin.flush()
                    return _stored(stdout)
            except TaskStopped:
                stdin.write("stop\n")
                stdin.flush()
                raise
        if kind == "error":
            raise RemoteTaskError(message["error"], message.get("traceback"))
    if gate.closed:
        raise TaskStopped("the run was stopped while this task was running")
    code = process.wait()
    raise RemoteTaskError(
        f"the task's process exited (code {code}) without storing an output (see its stderr)",
        None,
    )


def _stored(stdout: IO[str]) -> dict[str, Any]:
    line = stdout.readline()
    if not line:
        raise RemoteTaskError("the task's process died while storing its output", None)
    message = json.loads(line)
    if message.get("type") == "error":
        raise RemoteTaskError(message["error"], message.get("traceback"))
    return {"uuid": message["uuid"], "content_hash": message["content_hash"]}


def _kill(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return  # already gone
