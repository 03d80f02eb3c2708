"""One Prefect test harness per session, in a temporary PREFECT_HOME, and small generated projects."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date
from pathlib import Path

import pytest

# Before Prefect is imported: task caches and the harness database live under PREFECT_HOME and would
# otherwise leak between test sessions. The LLM environment must not leak in from the developer's shell.
PREFECT_HOME = Path(tempfile.mkdtemp(prefix="reverie-tests-prefect-"))
os.environ["PREFECT_HOME"] = str(PREFECT_HOME)
for variable in ("PREFECT_API_URL", "PREFECT_PROFILE", "OPENAI_BASE_URL", "OPENAI_API_KEY", "REVERIE_MODEL"):
    os.environ.pop(variable, None)

import reverie  # noqa: E402,F401  (sets reverie's Prefect defaults)
from reverie.config import load_settings  # noqa: E402
from reverie.generator import generate  # noqa: E402
from reverie.project import scaffold  # noqa: E402
from tests.scripted_llm import ScriptedLLM  # noqa: E402

START = date(2026, 1, 5)  # a Monday


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability(kind): counted in the README's reliability table "
                                       "(bench/reliability.py) as a fault, bad_input, escape or secret case")


@pytest.fixture(autouse=True)
def reliability_kind(request, record_property):
    """A reliability case says its kind in the test report, where bench/reliability.py counts it."""
    if (marker := request.node.get_closest_marker("reliability")) is not None:
        record_property("reliability", marker.args[0])


@pytest.fixture
def rows_lost(record_property):
    """Report how many rows stored before a case are gone after it (bench/reliability.py adds them up)."""
    return lambda count: record_property("rows_lost", count)


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    shutil.rmtree(PREFECT_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def session_llm():
    server = ScriptedLLM().start()
    yield server
    server.stop()


@pytest.fixture
def scripted_llm(session_llm):
    """The scripted server, with no script and no requests left over from another test."""
    session_llm.script()
    yield session_llm
    session_llm.script()


def new_project(folder: Path, days: int = 56, seed: int = 7, scale: float = 0.3, base_url: str | None = None,
                toml: str = ""):
    """A project folder scaffolded like `reverie init`, with `days` of generated demo events."""
    scaffold(folder)
    config = folder / "reverie.toml"
    llm = f'base_url = "{base_url}"\nmodel = "scripted-analyst"\ntimeout_seconds = 5.0\n' if base_url else ""
    config.write_text(config.read_text().replace("[llm]\n", f"[llm]\n{llm}", 1) + toml)
    settings = load_settings(folder)
    generate(settings.landing_dir, days, start=START, seed=seed, scale=scale)
    return settings


@pytest.fixture
def make_project(tmp_path):
    return lambda **options: new_project(tmp_path, **options)
