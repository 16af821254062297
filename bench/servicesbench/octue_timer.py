"""Run inside Octue's own venv (bench/.peers/octue): time Octue's Runner.run on the trivial app,
and Octue's per-file tag check on the same 10,000 tag sets. Prints one JSON document.

    python octue_timer.py RUNS TAGS_JSON_FILE
"""

import json
import logging
import sys
import time

logging.disable(logging.CRITICAL)  # Octue logs every run; the timing should not include that


def trivial_app(analysis):
    analysis.output_values = {"double": analysis.input_values["n"] * 2}


def main():
    runs = int(sys.argv[1])
    with open(sys.argv[2]) as handle:
        fixture = json.load(handle)
    from octue.twined.runner import Runner

    started = time.perf_counter()
    runner = Runner(app_src=trivial_app, twine=fixture["twine"])
    construct = time.perf_counter() - started
    samples = []
    for n in range(runs):
        started = time.perf_counter()
        analysis = runner.run(input_values={"n": n}, save_diagnostics="SAVE_DIAGNOSTICS_OFF")
        samples.append(time.perf_counter() - started)
        assert analysis.output_values == {"double": 2 * n}
    from jsonschema import validate as jsonschema_validate

    template = fixture["template"]
    tags = fixture["tags"]
    validation = []
    for _ in range(3):
        started = time.perf_counter()
        for item in tags:  # what octue.twined.runner._validate_dataset_file_tags does per file
            jsonschema_validate(instance=dict(item), schema=template)
        validation.append(time.perf_counter() - started)
    import importlib.metadata as metadata

    print(
        json.dumps(
            {
                "octue_version": metadata.version("octue"),
                "jsonschema_version": metadata.version("jsonschema"),
                "runner_construct_seconds": construct,
                "run_seconds": samples,
                "file_tag_check_seconds": validation,
            }
        )
    )


if __name__ == "__main__":
    main()
