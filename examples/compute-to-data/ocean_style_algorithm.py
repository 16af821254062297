"""An Ocean-style compute-to-data algorithm, written the way Ocean's examples are.

It knows nothing of Assay: it reads the datasets under the inputs folder (one folder per
dataset, named in the DIDS list), reads optional parameters from algoCustomData.json, and
writes its results to the outputs folder. On Ocean those folders are /data/inputs and
/data/outputs; a job runner says where they are through INPUTS and OUTPUTS.
"""

import json
import os
from pathlib import Path

INPUTS = Path(os.environ.get("INPUTS", "/data/inputs"))
OUTPUTS = Path(os.environ.get("OUTPUTS", "/data/outputs"))


def main() -> None:
    dids = json.loads(os.environ.get("DIDS", "[]"))
    custom_path = INPUTS / "algoCustomData.json"
    params = json.loads(custom_path.read_text()) if custom_path.exists() else {}
    word = params.get("word", "")
    summary = {}
    for did in dids:
        lines = matches = 0
        for path in sorted((INPUTS / did).rglob("*")):
            if path.is_file():
                for line in path.read_text().splitlines():
                    lines += 1
                    matches += bool(word) and word in line
        summary[did] = {"lines": lines, "matches": matches}
    OUTPUTS.mkdir(parents=True, exist_ok=True)
    with open(OUTPUTS / "summary.json", "w") as handle:
        json.dump({"word": word, "datasets": summary}, handle, indent=1, sort_keys=True)
    print(f"counted {len(dids)} datasets")


if __name__ == "__main__":
    main()
