"""Pipeline tasks the Dask tests run on real workers (importable by name there)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from assay.pipe import IntParameter, Parameter, PipeTask


class Square(PipeTask):
    i = IntParameter()

    def pipe_requires(self):
        self.set_bundle_name(f"square_{self.i}")

    def pipe_run(self):
        return {"i": self.i, "square": self.i * self.i, "pid": os.getpid()}


class SumSquares(PipeTask):
    width = IntParameter(default=4)

    def pipe_requires(self):
        for i in range(self.width):
            self.add_dependency(f"s{i}", Square, {"i": i})

    def pipe_run(self, **squares):
        return sum(s["square"] for s in squares.values())


class UntilStopped(PipeTask):
    """Writes ``marker`` with its pid, then runs until its job is asked to stop."""

    marker = Parameter()

    def pipe_run(self):
        Path(self.marker).write_text(str(os.getpid()))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.stop_requested():
            threading.Event().wait(0.02)  # a long computation's loop; the stop flag ends it
        return "finished after a stop"


class DiesOnce(PipeTask):
    """First attempt: writes ``<marker>.1`` and hangs (the test kills its worker); a later
    attempt stores its output."""

    marker = Parameter()

    def pipe_run(self):
        marker = Path(self.marker)
        attempt = len(list(marker.parent.glob(marker.name + ".*"))) + 1
        Path(f"{marker}.{attempt}").write_text(str(os.getpid()))
        if attempt == 1:
            time.sleep(120)  # killed long before: a hang, not a synchronisation
        return {"attempt": attempt}
