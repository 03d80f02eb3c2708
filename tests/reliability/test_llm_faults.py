"""The LLM endpoint failing every way real ones do, during a cycle and a cold `reverie ask`: the cycle ends degraded
with the detectors' insights and the brief, as a cycle with no analyst at all would; the ask says what went wrong in
one line; nothing stored before is lost, nothing half-written, no traceback."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from reverie.cli.commands import app
from reverie.config import load_settings
from reverie.flows.local_run import run_cycle
from reverie.generator import generate
from tests.helpers.faulty_llm import FAULTS, FaultyLLM
from tests.helpers.warehouse import STATE, state


@pytest.fixture(scope="module")
def faulty():
    server = FaultyLLM()
    yield server
    server.stop()


def use_llm(project: Path, base_url: str | None) -> None:
    """Point the project at `base_url` with a 1 s timeout, or turn its analyst off (None)."""
    config = project / "reverie.toml"
    text = config.read_text().replace("timeout_seconds = 5.0", "timeout_seconds = 1.0")
    if base_url is None:
        text = text.replace("[llm]\n", "[llm]\nanalysts = 0\n", 1)
    else:
        text = text.replace(text.split('base_url = "')[1].split('"')[0], base_url)
    config.write_text(text)


@pytest.fixture(scope="module")
def night(tmp_path_factory, cycled):
    """A project after one cycle with a new day landed, and what a cycle without an analyst makes of it."""
    settings = cycled(tmp_path_factory.mktemp("llm-faults") / "shop", days=30)
    base = settings.project_dir
    generate(settings.landing_dir, 1)
    reference = base.parent / "no-analyst"
    shutil.copytree(base, reference)
    use_llm(reference, None)
    assert run_cycle(reference)["status"] == "completed"
    return base, state(load_settings(reference).warehouse)


@pytest.mark.reliability("fault")
@pytest.mark.parametrize("fault", FAULTS)
def test_a_failing_llm_degrades_the_cycle_and_the_ask_and_loses_nothing(night, faulty, tmp_path, fault, capfd,
                                                                        rows_lost, monkeypatch):
    base, reference = night
    project = tmp_path / "shop"
    shutil.copytree(base, project)
    use_llm(project, faulty.base_url)
    faulty.fault, faulty.requests = fault, 0

    started = time.monotonic()
    summary = run_cycle(project)
    seconds = time.monotonic() - started

    after = state(load_settings(project).warehouse)
    rows_lost(sum(len(set(map(repr, reference[name])) - set(map(repr, after[name]))) for name in STATE))
    assert faulty.requests >= 1
    reflect = summary["stages"]["reflect"]
    if fault == "tool call cut short":  # a well-formed answer with a broken call: the analyst is told, and stops
        assert summary["status"] == "completed" and reflect["written"] == 0, summary
    else:
        assert summary["status"] == "degraded" and reflect["status"] == "degraded", summary
        assert reflect["error"] and "\n" not in reflect["error"]
    for name in STATE:
        assert after[name] == reference[name], name
    assert Path(summary["stages"]["deliver"]["brief"]).exists()
    assert seconds < 90  # a hanging endpoint costs its timeouts and retries, not the night
    with duckdb.connect(str(load_settings(project).warehouse), read_only=True) as con:
        assert con.execute("select count(*) from agent_insights").fetchone()[0] == 0
        outcomes = {o for (o,) in con.execute("select outcome from llm_calls where cycle_id = ?",
                                              [summary["cycle_id"]]).fetchall()}
    if fault != "tool call cut short":
        assert outcomes and all(o.startswith("error: ") for o in outcomes), outcomes

    monkeypatch.chdir(project)
    asked = CliRunner().invoke(app, ["ask", "--json", "--no-memory", "What was revenue yesterday?"])
    answer = json.loads(asked.stdout) if asked.exit_code == 0 else {"error": asked.output}
    assert not answer.get("grounded"), answer
    assert "Traceback" not in asked.output
    assert asked.exception is None or isinstance(asked.exception, SystemExit), asked.exception
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err
