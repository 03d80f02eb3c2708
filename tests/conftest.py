"""The suite's tiers, the programs some tests need, one Prefect test harness per session, and small generated projects.

`uv run pytest` runs the default tier; `uv run pytest --tier heavy` runs the tests marked `heavy` (real servers,
work pools, every crash point, Chromium, the embedded model end to end), `--tier all` both. In CI (`CI` set to a
true value) a test that would be skipped fails instead: there everything it needs is installed."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# a helper's asserts fail as a test's do, saying what was compared (before any helper is imported)
pytest.register_assert_rewrite("tests.helpers")

# Before Prefect is imported: task caches and the harness database live under PREFECT_HOME and would
# otherwise leak between test sessions. The LLM environment must not leak in from the developer's shell.
PREFECT_HOME = Path(tempfile.mkdtemp(prefix="reverie-tests-prefect-"))
os.environ["PREFECT_HOME"] = str(PREFECT_HOME)
for variable in ("PREFECT_API_URL", "PREFECT_PROFILE", "OPENAI_BASE_URL", "OPENAI_API_KEY", "REVERIE_MODEL"):
    os.environ.pop(variable, None)

import reverie  # noqa: E402,F401  (sets reverie's Prefect defaults)
from reverie.config import load_settings  # noqa: E402
from tests.helpers.programs import in_ci, missing  # noqa: E402
from tests.helpers.projects import new_project  # noqa: E402
from tests.helpers.scripted_llm import ScriptedLLM  # noqa: E402

TIERS = {"default": lambda heavy: not heavy, "heavy": lambda heavy: heavy, "all": lambda heavy: True}


def pytest_addoption(parser):
    parser.addoption("--tier", choices=sorted(TIERS), default="default",
                     help="default: the fast tier (the README's command); heavy: the tests marked heavy; all: both")


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability(kind): counted in the README's reliability table "
                                       "(bench/reliability.py) as a fault, bad_input, escape or secret case")
    config.addinivalue_line("markers", "heavy(why): in the heavy tier (`--tier heavy`), not the default one")
    config.addinivalue_line("markers", "needs(program): skipped where the program is missing; in CI, failed")
    config.addinivalue_line("markers", "without_prefect: a module's tests run without the Prefect test harness "
                                       "(Prefect is pointed at a closed port, so a test that uses it fails)")


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: a worker per core, up to four (each starts its own Prefect harness and holds a few hundred MB)."""
    return min(os.cpu_count() or 1, 4)


def pytest_collection_modifyitems(config, items):
    """Keep the tests of the chosen tier; the others are deselected (counted as such in the summary)."""
    wanted = TIERS[config.getoption("--tier")]
    kept, left = [], []
    for item in items:
        (kept if wanted(item.get_closest_marker("heavy") is not None) else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def pytest_report_header(config):
    tier = config.getoption("--tier")
    other = {"default": "`--tier heavy` runs the heavy one", "heavy": "`uv run pytest` runs the default one",
             "all": "both"}[tier]
    return f"reverie: the {tier} tier ({other}){'; CI: a skip fails' if in_ci() else ''}"


def pytest_runtest_setup(item):
    for marker in item.iter_markers("needs"):
        if (reason := missing(marker.args[0])) is not None:
            if in_ci():
                pytest.fail(f"{reason}; CI must run this test (.ci/run installs it)", pytrace=False)
            pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI nothing may be skipped: a skip there means a check that did not run while the run reads as green."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


@pytest.fixture(autouse=True)
def reliability_kind(request, record_property):
    """A reliability case says its kind in the test report, where bench/reliability.py counts it; an escape attempt
    also says which lock it tries and which statement (the digest of its `template`), so that a statement tried on
    a file and on a lake counts once per lock."""
    if (marker := request.node.get_closest_marker("reliability")) is not None:
        record_property("reliability", marker.args[0])
        if "lock" in marker.kwargs:
            record_property("lock", marker.kwargs["lock"])
            template = request.node.callspec.params["template"]
            record_property("statement", hashlib.sha256(template.encode()).hexdigest()[:16])


@pytest.fixture
def rows_lost(record_property):
    """Report how many rows stored before a case are gone after it (bench/reliability.py adds them up)."""
    return lambda count: record_property("rows_lost", count)


@pytest.fixture(scope="session", autouse=True)
def prefect_harness(request):
    """Prefect's test harness (a temporary API server) for the session, unless every test collected is in a module
    marked `without_prefect` (`uv run pytest tests/test_config.py` starts no server)."""
    if all(item.get_closest_marker("without_prefect") for item in request.session.items):
        yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    shutil.rmtree(PREFECT_HOME, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def without_prefect(request):
    """A module marked `without_prefect` finds no Prefect API at all (the discard port), so a test of it that uses
    Prefect fails instead of quietly starting a server."""
    if request.node.get_closest_marker("without_prefect") is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        yield


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


@pytest.fixture
def make_project(tmp_path):
    return lambda **options: new_project(tmp_path, **options)


@pytest.fixture(scope="session")
def cycled(tmp_path_factory, session_llm):
    """`cycled(folder, days)`: a copy in `folder` of a project after its first cycle (`days` of generated events, the
    scripted analyst saying nothing), the first cycle run once per session for each `days`; its settings. (Reset
    the scripted server before scripting it: the first use runs that cycle on it.)"""
    from reverie.flows.local_run import run_cycle

    made: dict[int, Path] = {}

    def copy(folder: Path, days: int = 56):
        if days not in made:
            template = tmp_path_factory.mktemp(f"cycled-{days}-days") / "shop"
            new_project(template, days=days, base_url=session_llm.base_url)
            session_llm.script()
            assert run_cycle(template)["status"] == "completed"
            session_llm.script()
            made[days] = template
        shutil.copytree(made[days], folder)
        return load_settings(folder)

    return copy
