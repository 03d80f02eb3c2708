"""The code's shape, checked: the import layers hold and the linter finds nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.without_prefect

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_the_layers_hold_cli_over_flows_over_tasks_over_the_core():
    checked = subprocess.run([BIN / "lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert "0 broken" in checked.stdout


def test_ruff_finds_nothing():
    checked = subprocess.run([BIN / "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout[-4000:]


def test_code_imports_flows_and_tasks_only_as_reveries():
    """`flows` and `tasks` exist as top-level names only in a checkout: an import of them by those names works here
    and fails where reverie is installed (import-linter cannot see it: they are not its packages)."""
    import ast

    wrong = []
    for path in sorted({*ROOT.glob("reverie/**/*.py"), *ROOT.glob("flows/**/*.py"), *ROOT.glob("tasks/**/*.py"),
                        *ROOT.glob("bench/**/*.py"), *ROOT.glob("tests/**/*.py")}):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            wrong += [f"{path.relative_to(ROOT)}:{node.lineno}: {name}" for name in names
                      if name.split(".")[0] in ("flows", "tasks")]
    assert not wrong, wrong
