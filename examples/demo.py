"""The Assay demo: versioned bundles in a context, on the embedded default (no server).

It makes a context, adds a folder of measurement files and a pandas DataFrame derived from them,
commits one, shows the history, searches by tag, prints the lineage of the derived bundle and
verifies the store. Everything lives under $ASSAY_HOME (default ~/.assay): SQLite + a folder.
Run it with ``./scripts/demo``; run it again and you get new versions, not errors.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from rich.console import Console

import assay.api as api

CONTEXT = "demo"
console = Console()


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def assay_cli(*args: str) -> None:
    """Show the same state through the command line, as a user would type it."""
    console.print(f"[dim]$ assay {' '.join(args)}")
    command = [str(Path(sys.executable).parent / "assay"), *args]
    subprocess.run(command, check=True)


def write_measurements(folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    for site in ("north", "south", "east"):
        site_dir = folder / site
        site_dir.mkdir(parents=True, exist_ok=True)
        with open(site_dir / "wind.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["hour", "speed_m_s"])
            for hour in range(24):
                writer.writerow([hour, round(rng.uniform(2, 14), 2)])
    (folder / "README.txt").write_text("Hourly wind speed at three sites.\n")


def main() -> None:
    home = os.environ.get("ASSAY_HOME", str(Path.home() / ".assay"))
    console.print(f"[bold]Assay demo[/] — catalog and store under [green]{home}[/]\n")
    workdir = Path(tempfile.mkdtemp(prefix="assay-demo-"))
    try:
        step("1. A context")
        created = api.context(CONTEXT) == 0
        api.switch(CONTEXT)
        console.print(f"context {CONTEXT!r} {'created' if created else 'already there'}")

        step("2. Add a folder of files as a bundle")
        raw_dir = workdir / "measurements"
        write_measurements(raw_dir, seed=1)
        raw = api.add(CONTEXT, "wind-raw", raw_dir, tags={"campaign": "2026", "stage": "raw"})
        console.print(
            f"wind-raw @ {raw.uuid[:8]}: {len(raw.data)} files, content {raw.content_hash[:16]}…"
        )
        again = api.add(CONTEXT, "wind-raw", raw_dir, tags={"campaign": "2026", "stage": "raw"})
        console.print(
            f"adding the unchanged folder again gives the same bundle: {again.uuid == raw.uuid}"
        )

        step("3. A DataFrame derived from it, with lineage")
        frames = [
            pd.read_csv(path).assign(site=Path(path).parent.name)
            for path in raw.data
            if path.endswith(".csv")
        ]
        summary = (
            pd.concat(frames)
            .groupby("site")["speed_m_s"]
            .agg(["mean", "max"])
            .round(2)
            .reset_index()
        )
        with api.Bundle(CONTEXT, "wind-summary") as bundle:
            bundle.add_data(summary)
            bundle.add_dependency(raw, "measurements")
            bundle.add_params({"statistics": ["mean", "max"]})
            bundle.add_tags({"campaign": "2026", "stage": "summary"})
        console.print(api.cat(CONTEXT, "wind-summary"))

        step("4. Commit, and make history")
        api.commit(CONTEXT, "wind-summary")
        write_measurements(raw_dir, seed=2)  # new measurements arrive
        newer = api.add(CONTEXT, "wind-raw", raw_dir, tags={"campaign": "2026", "stage": "raw"})
        console.print(f"a new version of wind-raw: {newer.uuid[:8]} (was {raw.uuid[:8]})")
        assay_cli("ls", "wind-raw", "--all-versions")

        step("5. Search by tag")
        for found in api.search(CONTEXT, search_tags={"stage": "summary"}):
            console.print(f"{found.name} @ {found.uuid[:8]} committed={found.committed}")
        assay_cli("search", "--tag", "campaign=2026")

        step("6. Lineage of the derived bundle")
        assay_cli("lineage", bundle.uuid)
        downstream = api.lineage(CONTEXT, raw.uuid, downstream=True)
        made_from_raw = [n.record.name for n in downstream[1:] if n.record is not None]
        console.print(f"made from wind-raw@{raw.uuid[:8]}: {made_from_raw}")

        step("7. Verify integrity")
        problems = api.verify(CONTEXT)
        console.print(problems if problems else "every blob matches its hash")
        assay_cli("verify")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    console.print("\n[bold green]Done.[/] Try: assay ls, assay show wind-summary, assay --help")
    console.print(
        "\nTo browse it in a web browser and over HTTP, start the server:\n"
        "  assay serve\n"
        "It prints its URL and (the first time) an admin token: open\n"
        "http://127.0.0.1:8765/ui/ and paste the token. REST API: /api/v1 (docs/server.md).",
        soft_wrap=True,
    )


if __name__ == "__main__":
    main()
