"""Run a registered service as a compute job's algorithm, inside the job's process.

``python -m assay.computejobs.service_main FOLDER SRUID`` asks the service in FOLDER one
question: the input manifest has one dataset per folder of ``$INPUTS`` (its key is the folder
name), the input values are ``$INPUTS/algoCustomData.json`` (or none). It writes the answer
under ``$OUTPUTS``: ``output_values.json`` and each output dataset's files in
``outputs/<dataset key>/``. Nothing is committed here (the job's control side publishes
``outputs/``), and the catalog is never opened, so this runs in a sandbox that hides it.
A failure raises: the traceback goes to the algorithm log and the exit code is non-zero.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from assay.computejobs.staging import CUSTOM_DATA_FILE
from assay.services.runner import Runner


def run(folder: str, sruid: str) -> None:
    inputs = Path(os.environ["INPUTS"])
    outputs = Path(os.environ["OUTPUTS"])
    custom = inputs / CUSTOM_DATA_FILE
    input_values = json.loads(custom.read_text(encoding="utf-8")) if custom.exists() else None
    datasets = {entry.name: str(entry) for entry in sorted(inputs.iterdir()) if entry.is_dir()}
    runner = Runner.from_config(folder, service=sruid)
    runner.commit_outputs = False
    analysis = runner.run(
        input_values=input_values, input_manifest={"datasets": datasets} if datasets else None
    )
    outputs.mkdir(parents=True, exist_ok=True)
    if analysis.output_values is not None:
        (outputs / "output_values.json").write_text(
            json.dumps(analysis.output_values, sort_keys=True), encoding="utf-8"
        )
    manifest = analysis.output_manifest
    if manifest is not None:
        for key in manifest.references:
            dataset = manifest.get_dataset(key)
            for datafile in dataset.files:
                if datafile.local_path is None or datafile.relative_path is None:
                    continue
                target = outputs / key / datafile.relative_path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(datafile.local_path, target)
    print(f"service {sruid} answered; outputs in {outputs}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m assay.computejobs.service_main FOLDER SRUID")
    run(sys.argv[1], sys.argv[2])
