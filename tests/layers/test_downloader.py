"""``Manifest.download`` goes through a downloader that a higher layer registers (the core does
no I/O and imports nothing above itself). Each check runs in a fresh interpreter, so what is
registered depends only on what that interpreter imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _run(code: str, cwd: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_core_alone_has_no_downloader_and_says_so(tmp_path: Path, sqlite_home: Path) -> None:
    source = tmp_path / "data"
    source.mkdir()
    (source / "a.txt").write_text("a")
    result = _run(
        "import json, sys\n"
        "from assay.core.manifest import Manifest\n"
        "from assay.core.errors import NoDownloader\n"
        f"m = Manifest({{'d': {source.as_uri()!r}}})\n"
        "try:\n"
        "    m.download()\n"
        "except NoDownloader as error:\n"
        "    out = {'code': error.code, 'message': error.message}\n"
        "out['above_core'] = sorted(n for n in sys.modules if n.startswith('assay.')\n"
        "    and not n.startswith('assay.core'))\n"
        "print(json.dumps(out))\n",
        tmp_path,
    )
    assert result["code"] == "no_downloader"
    assert "import assay.resources" in str(result["message"])
    assert result["above_core"] == []


def test_the_resources_face_and_services_register_it(tmp_path: Path, sqlite_home: Path) -> None:
    source = tmp_path / "data"
    source.mkdir()
    (source / "a.txt").write_text("payload")
    for module in ("assay.resources", "assay.services.child", "assay.services.runner"):
        result = _run(
            "import json, importlib, os\n"
            f"importlib.import_module({module!r})\n"
            "from assay.core.manifest import Manifest\n"
            f"paths = Manifest({{'d': {source.as_uri()!r}}}).download()\n"
            "print(json.dumps({'text': open(os.path.join(paths['d'], 'a.txt')).read()}))\n",
            tmp_path,
        )
        assert result == {"text": "payload"}, module


def test_registering_costs_a_worker_no_fsspec_import(tmp_path: Path) -> None:
    # A fresh worker's start-up is the floor of a question's round trip.
    result = _run(
        "import json, sys\n"
        "import assay.services.runner\n"
        "print(json.dumps({'fsspec': 'fsspec' in sys.modules}))\n",
        tmp_path,
    )
    assert result == {"fsspec": False}
