"""The code version a bundle was made with: git commit, branch and dirty flag, when in a repo."""

from __future__ import annotations

import os
import subprocess
from typing import Any


def code_version(directory: str | None = None) -> dict[str, Any]:
    """``{"git_commit", "git_branch", "git_dirty", "repo"}`` or ``{}`` outside a git repo.

    One ``git status`` call gives all three; untracked files are ignored (as in ``git
    describe --dirty``) so a big untracked data folder does not slow every add down.
    """
    try:
        completed = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=directory or os.getcwd(),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if completed.returncode != 0:
        return {}
    commit = branch = None
    dirty = False
    for line in completed.stdout.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2]
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2]
        elif not line.startswith("#"):
            dirty = True
    if commit is None or commit == "(initial)":
        return {}
    return {"git_commit": commit, "git_branch": branch, "git_dirty": dirty}
