"""Using manifests: read a dataset from the input manifest, write a cleaned, tagged dataset.

Ported from Octue's using-manifests template; the Octue calls it relies on work unchanged:
``get_dataset``, ``get_file_by_label``, ``files.filter(labels__contains=...)``,
``order_by("tags__sequence", check_start_value=0, check_constant_increment=1)`` and
``Datafile(path=..., labels=..., tags=...).open("w")``.
"""

import csv
import logging
import os

from assay.resources import Datafile, Dataset, Manifest

logger = logging.getLogger(__name__)


def read_metadata(datafile):
    with datafile.open() as handle:
        return dict(line.strip().split("=", 1) for line in handle if "=" in line)


def run(analysis):
    time_window = analysis.configuration_values.get("time_window", 600)
    dataset = analysis.input_manifest.get_dataset("raw_met_mast_data")
    metadata = read_metadata(dataset.get_file_by_label("meta"))
    timeseries = dataset.files.filter(labels__contains="timeseries").order_by(
        "tags__sequence", check_start_value=0, check_constant_increment=1
    )
    logger.info(
        "cleaning %d files from %s (window %ss)", len(timeseries), metadata["date"], time_window
    )
    rows, dropped = [], 0
    for datafile in timeseries:
        with datafile.open() as handle:
            for row in csv.DictReader(handle):
                try:
                    rows.append({"time": row["time"], "wind_speed": float(row["wind_speed"])})
                except (KeyError, ValueError):
                    dropped += 1
    cleaned = Datafile(
        path=os.path.join(analysis.output_dir, "cleaned.csv"),
        labels=["timeseries", "cleaned"],
        tags={"date": metadata["date"], "rows": len(rows)},
    )
    with cleaned.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["time", "wind_speed"])
        writer.writeheader()
        writer.writerows(rows)
    output = Dataset(
        files=[cleaned],
        path=analysis.output_dir,
        name="cleaned_met_mast_data",
        labels=["met", "mast", "cleaned"],
    )
    analysis.output_manifest = Manifest(datasets={"cleaned_met_mast_data": output})
    analysis.output_values = {"rows": len(rows), "dropped": dropped}
