"""The programs some tests need besides Python (Debian's Chromium and PostgreSQL), and whether this run is CI's."""

from __future__ import annotations

import os

from tests.helpers.browser import chromium_path
from tests.helpers.postgres import binaries

# what each program is found by, and how to install it (.ci/run does)
PROGRAMS = {
    "chromium": (chromium_path, "apt-get install chromium"),
    "postgresql": (lambda: binaries() and str(binaries()), "apt-get install postgresql"),
}


def in_ci() -> bool:
    """Whether CI runs the suite: `CI` set to a true value (`CI=false` or `CI=0` is not CI)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def missing(program: str) -> str | None:
    """Why a test that needs `program` cannot run here, or None when it can."""
    find, install = PROGRAMS[program]
    return None if find() else f"{program} is not available ({install})"
