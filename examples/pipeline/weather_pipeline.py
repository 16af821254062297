"""A worked pipeline: station readings (an existing bundle) -> clean -> per-station stats ->
a summary with a report file. See README.md and docs/pipelines.md.

    assay add readings examples/pipeline/data/readings.csv
    cd examples/pipeline && assay apply weather_pipeline:Summary --param stations='["aberdeen","london"]'
"""

from __future__ import annotations

import csv
import statistics

from assay.pipe import FloatParameter, ListParameter, Parameter, PipeTask


def parse_float(text: str) -> float | None:
    """Empty cells are missing readings."""
    return float(text) if text.strip() else None


class Clean(PipeTask):
    """Drops rows with a missing reading; writes the clean table as a CSV file."""

    readings = Parameter(default="readings")  # the name of the input bundle

    def pipe_requires(self):
        self.set_bundle_name("clean_readings")
        self.add_external_dependency("raw", self.readings, {})

    def pipe_run(self, raw=None):
        with open(raw) as handle:
            rows = [
                row
                for row in csv.DictReader(handle)
                if parse_float(row["temperature_c"]) is not None
                and parse_float(row["wind_ms"]) is not None
            ]
        target = self.create_output_file("clean.csv")
        with target.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return target


class StationStats(PipeTask):
    """Mean temperature and peak wind of one station."""

    station = Parameter()

    def pipe_requires(self):
        self.set_bundle_name(f"stats_{self.station}")
        self.add_dependency("clean", Clean, {})

    def pipe_run(self, clean=None):
        with open(clean) as handle:
            rows = [r for r in csv.DictReader(handle) if r["station"] == self.station]
        return {
            "station": self.station,
            "days": len(rows),
            "mean_temperature_c": round(
                statistics.mean(float(r["temperature_c"]) for r in rows), 2
            ),
            "peak_wind_ms": max(float(r["wind_ms"]) for r in rows),
        }


class Summary(PipeTask):
    """The root: every station's stats, the windiest station, and a text report."""

    stations = ListParameter(default=["aberdeen", "london", "plymouth"])
    gale_ms = FloatParameter(default=14.0)

    def pipe_requires(self):
        for station in self.stations:
            self.add_dependency(station, StationStats, {"station": station})
        self.add_tags({"kind": "weather-summary"})

    def pipe_run(self, **stats):
        windiest = max(stats.values(), key=lambda s: s["peak_wind_ms"])
        report = self.create_output_file("report.txt")
        with report.open("w") as handle:
            for name in sorted(stats):
                s = stats[name]
                gale = " (gale)" if s["peak_wind_ms"] >= self.gale_ms else ""
                handle.write(
                    f"{name}: {s['mean_temperature_c']} C mean, {s['peak_wind_ms']} m/s peak{gale}\n"
                )
        return {"stations": stats, "windiest": windiest["station"], "report": report}
