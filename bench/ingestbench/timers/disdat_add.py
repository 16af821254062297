"""Time one ``disdat.api.add`` inside Disdat's own venv; prints one JSON line.

Usage: python disdat_add.py CONTEXT BUNDLE PATH   (with $HOME pointing at a fresh directory,
where Disdat keeps its config and contexts). Only the add call is timed, not start-up.
"""

from __future__ import annotations

import json
import sys
import time


def main(context: str, bundle: str, path: str) -> int:
    try:
        import disdat.api as api

        api.init()
        api.context(context)
        start = time.perf_counter()
        api.add(context, bundle, path)
        seconds = time.perf_counter() - start
    except Exception as error:  # reported to the parent, which records it
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 3
    print(json.dumps({"add": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
