"""Time ``assay.api.add`` and an unchanged re-add in Assay's venv; prints one JSON line.

Usage: python assay_add.py CONTEXT BUNDLE PATH   (with $ASSAY_HOME pointing at a fresh
directory). Assay is imported and the context created before the clock starts, so only the
add calls are timed, the same as for Disdat.
"""

from __future__ import annotations

import json
import sys
import time


def main(context: str, bundle: str, path: str) -> int:
    try:
        import assay.api as api
    except Exception as error:
        print(json.dumps({"error": f"not available: {type(error).__name__}: {error}"}))
        return 3
    try:
        api.context(context)
        start = time.perf_counter()
        api.add(context, bundle, path)
        added = time.perf_counter()
        api.add(context, bundle, path)
        readded = time.perf_counter()
    except Exception as error:  # reported to the parent, which records it
        print(json.dumps({"error": f"failed: {type(error).__name__}: {error}"}))
        return 3
    print(json.dumps({"add": added - start, "readd": readded - added}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
