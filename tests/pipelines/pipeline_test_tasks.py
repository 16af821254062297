"""Task classes the pipeline tests run (importable by name, so the subprocess executor and the
CLI can load them too). Tasks that must be observed write marker files under ``MARKERS``."""

from __future__ import annotations

import datetime
import os
import threading
from pathlib import Path

from assay.pipe import (
    BoolParameter,
    DateParameter,
    DictParameter,
    FloatParameter,
    IntParameter,
    ListParameter,
    Parameter,
    PipeTask,
)


def _marker(name: str) -> Path | None:
    folder = os.environ.get("PIPE_TEST_MARKERS")
    return Path(folder) / name if folder else None


def note_run(name: str) -> None:
    """Append ``name`` to the run log, so a test can see which tasks really ran."""
    path = _marker("runs.log")
    if path is not None:
        with path.open("a") as handle:
            handle.write(name + "\n")


class Numbers(PipeTask):
    n = IntParameter(default=3)

    def pipe_run(self):
        note_run(f"Numbers({self.n})")
        return list(range(self.n))


class Total(PipeTask):
    n = IntParameter(default=3)
    scale = FloatParameter(default=1.0)

    def pipe_requires(self):
        self.add_dependency("numbers", Numbers, {"n": self.n})

    def pipe_run(self, numbers=None):
        note_run(f"Total({self.n})")
        return sum(numbers) * self.scale


class Report(PipeTask):
    """Root of a diamond: Numbers feeds Total and Squares; Report joins them."""

    n = IntParameter(default=3)
    label = Parameter(default="report")

    def pipe_requires(self):
        self.add_dependency("total", Total, {"n": self.n})
        self.add_dependency("squares", Squares, {"n": self.n})
        self.add_tags({"stage": "report"})

    def pipe_run(self, total=None, squares=None):
        note_run("Report")
        target = self.create_output_file("report.txt")
        with target.open("w") as handle:
            handle.write(f"{self.label}: total={total} squares={squares}\n")
        return {"total": total, "squares": squares, "file": target}


class Squares(PipeTask):
    n = IntParameter(default=3)

    def pipe_requires(self):
        self.add_dependency("numbers", Numbers, {"n": self.n})

    def pipe_run(self, numbers=None):
        note_run(f"Squares({self.n})")
        return [x * x for x in numbers]


class AllKinds(PipeTask):
    count = IntParameter(default=1)
    ratio = FloatParameter(default=0.5)
    flag = BoolParameter()
    items = ListParameter(default=[1, 2])
    options = DictParameter(default={"a": 1})
    day = DateParameter(default=datetime.date(2026, 1, 2))
    text = Parameter(default="x")

    def pipe_run(self):
        return {
            "count": self.count,
            "ratio": self.ratio,
            "flag": self.flag,
            "items": list(self.items),
            "options": dict(self.options),
            "day": self.day.isoformat(),
            "text": self.text,
        }


class UsesExternal(PipeTask):
    source = Parameter(default="raw")

    def pipe_requires(self):
        self.bundle = self.add_external_dependency("raw", self.source, {})

    def pipe_run(self, raw=None):
        note_run("UsesExternal")
        return {"size": len(raw), "from": self.get_bundle_uuid("raw")}


class Copy(PipeTask):
    """A copy that keeps the content of its input (to show early cutoff downstream)."""

    def pipe_requires(self):
        self.add_dependency("numbers", Numbers, {"n": 4})

    def pipe_run(self, numbers=None):
        note_run("Copy")
        return list(numbers)


class AfterCopy(PipeTask):
    def pipe_requires(self):
        self.add_dependency("copy", Copy, {})

    def pipe_run(self, copy=None):
        note_run("AfterCopy")
        return len(copy)


# -- bad inputs ---------------------------------------------------------------------------------
class CycleA(PipeTask):
    def pipe_requires(self):
        self.add_dependency("b", CycleB, {})

    def pipe_run(self, b=None):
        return 1


class CycleB(PipeTask):
    def pipe_requires(self):
        self.add_dependency("c", CycleC, {})

    def pipe_run(self, c=None):
        return 1


class CycleC(PipeTask):
    def pipe_requires(self):
        self.add_dependency("a", CycleA, {})

    def pipe_run(self, a=None):
        return 1


class ReturnsObject(PipeTask):
    def pipe_requires(self):
        self.add_dependency("numbers", Numbers, {"n": 2})

    def pipe_run(self, numbers=None):
        return threading.Lock()


class Piece(PipeTask):
    """Fails while a ``fail-<i>`` marker file exists (a cause fixed without changing code)."""

    i = IntParameter()

    def pipe_requires(self):
        self.set_bundle_name(f"piece_{self.i}")

    def pipe_run(self):
        note_run(f"Piece({self.i})")
        marker = _marker(f"fail-{self.i}")
        if marker is not None and marker.exists():
            raise ValueError(f"piece {self.i} cannot be made")
        return self.i


class Gather(PipeTask):
    width = IntParameter(default=6)

    def pipe_requires(self):
        for i in range(self.width):
            self.add_dependency(f"p{i}", Piece, {"i": i})

    def pipe_run(self, **pieces):
        note_run("Gather")
        return sum(pieces.values())


class SameName(PipeTask):
    n = IntParameter()

    def pipe_requires(self):
        self.set_bundle_name("shared")

    def pipe_run(self):
        return self.n


class TwoWriters(PipeTask):
    def pipe_requires(self):
        self.add_dependency("one", SameName, {"n": 1})
        self.add_dependency("two", SameName, {"n": 2})

    def pipe_run(self, one=None, two=None):
        return one + two


class Opaque(PipeTask):
    thing = Parameter(default=None)

    def pipe_run(self):
        return str(self.thing)


# -- stopping -----------------------------------------------------------------------------------
class Slow(PipeTask):
    """Writes ``started-<name>`` then waits until the run is stopped (cooperatively)."""

    name = Parameter(default="slow")

    def pipe_requires(self):
        self.set_bundle_name(self.name)
        self.add_dependency("numbers", Numbers, {"n": 2})  # stored before this starts

    def pipe_run(self, numbers=None):
        marker = _marker(f"started-{self.name}")
        assert marker is not None
        marker.write_text(str(os.getpid()))
        while not self.stop_requested():
            threading.Event().wait(0.01)
        return "finished after a stop"


class Stubborn(PipeTask):
    """Writes ``started-stubborn`` then never returns (ignores stop requests)."""

    def pipe_requires(self):
        self.set_bundle_name("stubborn")
        self.add_dependency("numbers", Numbers, {"n": 2})

    def pipe_run(self, numbers=None):
        marker = _marker("started-stubborn")
        assert marker is not None
        marker.write_text(str(os.getpid()))
        threading.Event().wait()
        return "never"


class StopRoot(PipeTask):
    def pipe_requires(self):
        self.add_dependency("slow", Slow, {"name": "slow"})
        self.add_dependency("stubborn", Stubborn, {})

    def pipe_run(self, slow=None, stubborn=None):
        return "root"
