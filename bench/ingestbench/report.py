"""Turn the raw samples into figures, ratios, target checks and a markdown table.

Every ratio is ``reference_seconds / row_seconds``: the row's throughput over the reference's
on the same bytes in the same run. Above 1 the row is faster than the reference.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestbench.datasets import Dataset

Samples = dict[str, list[float]]
Summary = dict[str, dict[str, Any]]

_TO_BLAKE3_AND_CP = (("blake3_1t", "blake3_1thread"), ("cp", "cp"))


@dataclass(frozen=True)
class RowSpec:
    """A row of the table: its key, its label, and (column, reference row) pairs to compare."""

    key: str
    label: str
    kind: str
    compare: tuple[tuple[str, str], ...] = ()


ROWS: tuple[RowSpec, ...] = (
    RowSpec("blake3_1thread", "raw BLAKE3, 1 thread", "reference"),
    RowSpec("blake3_threaded", "raw BLAKE3, AUTO threads", "reference", _TO_BLAKE3_AND_CP[:1]),
    RowSpec("cp", "cp / cp -r (file-creation floor)", "reference", _TO_BLAKE3_AND_CP[:1]),
    RowSpec("pack_floor", "one Python loop appending to one pack file (floor)", "reference"),
    RowSpec("disdat_add", "Disdat 1.2 api.add (copy, no hashing)", "peer", _TO_BLAKE3_AND_CP),
    RowSpec("dvc_add", "dvc add (wall clock, start-up included)", "peer", _TO_BLAKE3_AND_CP),
    RowSpec("dvc_add_minus_startup", "dvc add minus `dvc --version`", "derived"),
    RowSpec("dvc_add_minus_tiny_add", "dvc add minus dvc add of 1 byte", "derived"),
    RowSpec("dvc_readd_unchanged", "dvc add again, data unchanged", "peer"),
    RowSpec("dvc_readd_minus_startup", "dvc add again minus `dvc --version`", "derived"),
    RowSpec(
        "assay_add",
        "**Assay api.add**",
        "assay",
        (
            *_TO_BLAKE3_AND_CP,
            ("blake3_mt", "blake3_threaded"),
            ("pack", "pack_floor"),
            ("disdat", "disdat_add"),
            ("dvc", "dvc_add"),
            ("dvc_no_startup", "dvc_add_minus_startup"),
            ("dvc_no_fixed", "dvc_add_minus_tiny_add"),
        ),
    ),
    RowSpec(
        "assay_readd_unchanged",
        "**Assay api.add again, unchanged**",
        "assay",
        (
            *_TO_BLAKE3_AND_CP,
            ("dvc", "dvc_readd_unchanged"),
            ("dvc_no_startup", "dvc_readd_minus_startup"),
        ),
    ),
)
STARTUP_ROWS: tuple[RowSpec, ...] = (
    RowSpec("dvc_version", "`dvc --version` (DVC start-up)", "peer"),
    RowSpec("dvc_add_tiny", "dvc add of a 1-byte file", "peer"),
)
_COLUMNS = (
    ("blake3_1t", "vs BLAKE3 1t"),
    ("cp", "vs cp"),
    ("pack", "vs pack floor"),
    ("disdat", "vs Disdat"),
    ("dvc", "vs DVC"),
    ("dvc_no_startup", "vs DVC minus start-up"),
    ("dvc_no_fixed", "vs DVC minus 1-byte add"),
)


def _figure(seconds: list[float], dataset: Dataset) -> dict[str, Any]:
    best = min(seconds)
    figure: dict[str, Any] = {
        "seconds": best,
        "median_seconds": statistics.median(seconds),
        "samples": seconds,
    }
    if dataset.measures_throughput and best > 0:
        figure["gb_per_s"] = dataset.bytes / 1e9 / best
        figure["files_per_s"] = dataset.files / best
    if dataset.files > 1:
        figure["seconds_per_10k_files"] = best * 10_000 / dataset.files
    return figure


# (row, fixed-cost row measured on the start-up data set, derived row)
_DERIVED = (
    ("dvc_add", "dvc_version", "dvc_add_minus_startup"),
    ("dvc_add", "dvc_add_tiny", "dvc_add_minus_tiny_add"),
    ("dvc_readd_unchanged", "dvc_version", "dvc_readd_minus_startup"),
)


def _derive_minus_fixed_cost(summary: Summary, startup: Summary, dataset: Dataset) -> None:
    """DVC's rows less its fixed cost, best minus best (clamped at zero)."""
    for row, fixed, derived in _DERIVED:
        seconds = summary.get(row, {}).get("seconds")
        fixed_seconds = startup.get(fixed, {}).get("seconds")
        if seconds is not None and fixed_seconds is not None:
            summary[derived] = _figure([max(seconds - fixed_seconds, 0.0)], dataset)
            summary[derived]["derived_from"] = f"{row}.seconds - startup.{fixed}.seconds"


def _add_ratios(summary: Summary, specs: tuple[RowSpec, ...]) -> None:
    for spec in specs:
        row = summary.get(spec.key)
        if not row or "seconds" not in row:
            continue
        ratios: dict[str, float | None] = {}
        for _column, reference in spec.compare:
            ref_seconds = summary.get(reference, {}).get("seconds")
            ok = ref_seconds is not None and row["seconds"] > 0
            ratios[f"vs_{reference}"] = ref_seconds / row["seconds"] if ok else None
        row["ratios"] = ratios


def summarise(
    dataset: Dataset,
    samples: Samples,
    errors: dict[str, str],
    facts: dict[str, Any],
    startup: Summary | None = None,
) -> Summary:
    """Best-of-N figures per row, the derived DVC rows, ratios, and each failed row's error."""
    summary: Summary = {}
    for row, values in samples.items():
        if row not in errors and values:
            summary[row] = _figure(values, dataset)
    for row, error in errors.items():  # a row that failed once has no figure, only its error
        summary[row] = {"error": error, "partial_samples": samples.get(row, [])}
    if startup is not None:
        _derive_minus_fixed_cost(summary, startup, dataset)
    _add_ratios(summary, ROWS if startup is not None else STARTUP_ROWS)
    for row, row_facts in facts.items():
        summary.setdefault(row, {}).update(row_facts)
    return summary


def check_targets(results: dict[str, Summary]) -> list[dict[str, Any]]:
    """The issue's targets, checked against this run's figures."""

    def ratio(dataset: str, row: str, key: str) -> float | None:
        return results.get(dataset, {}).get(row, {}).get("ratios", {}).get(key)

    checks: list[dict[str, Any]] = []

    def check(target: str, value: float | None, unit: str, ok: bool | None) -> None:
        checks.append({"target": target, "value": value, "unit": unit, "met": ok})

    value = ratio("small_files", "assay_add", "vs_disdat_add")
    check(
        "small_files: Assay add <= 0.5x Disdat's time",
        value,
        "disdat_seconds / assay_seconds (>= 2 meets it)",
        None if value is None else value >= 2.0,
    )
    value = ratio("small_files", "assay_add", "vs_pack_floor")
    check(
        "small_files: Assay add <= 2x the one-pack-file floor",
        value,
        "floor_seconds / assay_seconds (>= 0.5 meets it)",
        None if value is None else value >= 0.5,
    )
    readd = results.get("small_files", {}).get("assay_readd_unchanged", {})
    value = readd.get("seconds_per_10k_files")
    check(
        "small_files: re-add of 10k unchanged files < 0.2 s",
        value,
        "seconds per 10k files",
        None if value is None else value < 0.2,
    )
    value = ratio("big_file", "assay_add", "vs_blake3_1thread")
    check(
        "big_file: Assay add <= 1.15x one-thread BLAKE3",
        value,
        "blake3_seconds / assay_seconds (>= 0.87 meets it)",
        None if value is None else value >= 1 / 1.15,
    )
    return checks


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if value < 1000 else f"{value:,.0f}"


def _throughput(row: dict[str, Any], dataset: Dataset) -> str:
    if row.get("gb_per_s") is None:
        return "-"
    if dataset.files > 1:
        return f"{row['files_per_s']:,.0f} files/s ({row['gb_per_s']:.3g} GB/s)"
    return f"{row['gb_per_s']:.3g} GB/s"


def _table_row(spec: RowSpec, row: dict[str, Any], dataset: Dataset) -> str:
    if "seconds" not in row:
        return f"| {spec.label} | {row.get('error', 'not measured')} |" + " |" * (2 + len(_COLUMNS))
    ratios = row.get("ratios", {})
    by_column = {column: ratios.get(f"vs_{ref}") for column, ref in spec.compare}
    cells = [_number(by_column.get(column)) for column, _title in _COLUMNS]
    median = _number(row.get("median_seconds"))
    times = f"{_number(row['seconds'])} | {median}"
    return f"| {spec.label} | {times} | {_throughput(row, dataset)} | " + " | ".join(cells) + " |"


def dataset_table(dataset: Dataset, summary: Summary, specs: tuple[RowSpec, ...]) -> str:
    """A markdown table of one data set's rows."""
    titles = " | ".join(title for _column, title in _COLUMNS)
    lines = [
        f"| {dataset.label} | best s | median s | throughput | {titles} |",
        "|---|---:|---:|---:|" + "---:|" * len(_COLUMNS),
    ]
    lines += [_table_row(s, summary[s.key], dataset) for s in specs if s.key in summary]
    return "\n".join(lines)


def markdown(record: dict[str, Any], datasets: list[Dataset], startup: Dataset) -> str:
    """The whole report: the set-up in two lines, a table per data set, and the targets."""
    machine, versions = record["machine"], record["versions"]
    fs = machine["work_dir_filesystem"]
    lines = [
        f"Ingest benchmark ({record['mode']}, {record['generated_at']}). Machine: "
        f"{machine['cpu_count']} x {machine['cpu_model']}, {machine['ram_gib']} GiB RAM, "
        f"{fs['type']} ({fs['device']}), Python {machine['python']}. Versions: "
        + ", ".join(f"{name} {version}" for name, version in versions.items())
        + ".",
        "",
        f"{record['method']['statistic']}; {record['method']['cache']} Ratios are reference "
        "seconds / row seconds: above 1 the row is faster than that reference. Load average "
        f"(1 min) before / after the run: {record['load_average']['before'][0]} / "
        f"{record['load_average']['after'][0]} on {machine['cpu_count']} CPUs.",
        "",
    ]
    for dataset in datasets:
        lines += [dataset_table(dataset, record["results"][dataset.key], ROWS), ""]
    lines += [dataset_table(startup, record["results"][startup.key], STARTUP_ROWS), ""]
    lines.append("Targets:")
    for check in record["targets"]:
        met = {True: "met", False: "NOT met", None: "not measured"}[check["met"]]
        lines.append(f"- {check['target']}: {_number(check['value'])} ({check['unit']}): {met}")
    return "\n".join(lines) + "\n"


_MARKERS = ("<!-- ingest-results:start -->", "<!-- ingest-results:end -->")


def update_readme(readme: Path, table: str) -> None:
    """Replace the results section of ``readme`` (between its markers) with ``table``."""
    if not readme.is_file():
        return
    text = readme.read_text()
    start, end = _MARKERS
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        replacement = f"{start}\n{table}{end}"
        readme.write_text(pattern.sub(lambda _match: replacement, text))
