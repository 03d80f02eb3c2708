"""deployments/prefect.yaml and automations.yaml, read with Prefect's own models of those files (so a typo cannot
land), and what `reverie serve` builds from them for one project."""

import sys
import uuid
from pathlib import Path

import pytest
import yaml
from prefect.cli.deploy._models import (
    DeploymentConfig,
    PrefectYamlModel,
    RawScheduleConfig,
)
from prefect.client.schemas.schedules import CronSchedule
from prefect.events import DeploymentTriggerTypes
from prefect.events.schemas.automations import AutomationCore
from prefect.flows import load_flow_from_entrypoint
from pydantic import TypeAdapter

from reverie.flows.serve import deployment_specs, served_flows
from reverie.paths import DEPLOYMENTS_DIR, PACKAGE_DIR
from tests.helpers import processes

DEPLOYMENTS = ["nightly", "dbt-nightly", "metrics-refresh", "analysis", "morning-brief", "cycle-unit"]


def _raw() -> dict:
    return yaml.safe_load((DEPLOYMENTS_DIR / "prefect.yaml").read_text())


def _deployments() -> dict[str, dict]:
    return {d["name"]: d for d in _raw()["deployments"]}


def test_prefect_yaml_validates_with_prefects_model_and_has_no_unknown_keys():
    raw = _raw()
    model = PrefectYamlModel.model_validate(raw)
    assert [d.name for d in model.deployments] == DEPLOYMENTS
    # Prefect's model ignores unknown keys; a misspelt key must not slip through silently ('definitions' holds the
    # YAML anchors, as Prefect's docs do)
    top_level = {f.alias or name for name, f in PrefectYamlModel.model_fields.items()}
    assert set(raw) <= top_level | {"definitions"}
    for deployment in raw["deployments"]:
        assert set(deployment) <= set(DeploymentConfig.model_fields)
        assert deployment["work_pool"]["name"] == "reverie-process"
        assert deployment["parameters"]["project_dir"] == "{{ $REVERIE_PROJECT_DIR }}"
        # one run of a flow at a time (a project's runs take turns on its writer lock); a cycle's units at once
        assert deployment.get("concurrency_limit", {}).get("limit") == (None if deployment["name"] == "cycle-unit"
                                                                        else 1)


def test_every_schedule_is_a_valid_cron_with_an_explicit_timezone():
    scheduled = {name: d["schedules"] for name, d in _deployments().items() if d.get("schedules")}
    assert set(scheduled) == {"nightly", "dbt-nightly", "metrics-refresh", "morning-brief"}
    # deployed together, only one of the two nights runs until a [dbt] project swaps them
    assert [s["active"] for s in scheduled["nightly"] + scheduled["dbt-nightly"]] == [True, False]
    for schedules in scheduled.values():
        for schedule in schedules:
            RawScheduleConfig.model_validate(schedule)  # extra="forbid": no misspelt schedule keys
            assert schedule["timezone"], "cron times are UTC unless a schedule says otherwise"
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    assert scheduled["metrics-refresh"][0]["cron"].split()[1] == "*"  # hourly


def test_event_triggers_validate_and_chain_data_arrival_to_refresh_to_analysis():
    adapter = TypeAdapter(DeploymentTriggerTypes)
    expected = {}
    for name, deployment in _deployments().items():
        for trigger in deployment.get("triggers", []):
            parsed = adapter.validate_python(trigger)
            assert parsed.match.model_dump() == {"prefect.resource.id": "reverie.project.*"}
            expected[name] = sorted(parsed.expect)
    assert expected == {"metrics-refresh": ["reverie.data.arrived"], "analysis": ["reverie.metrics.refreshed"]}


def test_entrypoints_load_the_flows_and_parameters_match_their_signatures():
    flows = {}
    for name, deployment in _deployments().items():
        path, _, function = deployment["entrypoint"].partition(":")
        flow = load_flow_from_entrypoint(f"{PACKAGE_DIR / path}:{function}")
        flows[name] = flow.name
        assert set(deployment["parameters"]) <= set(flow.parameters.properties)
        # a unit's run writes under its cycle's writer lock: it does not wait for one
        assert ("wait_minutes" in deployment["parameters"]) == (name != "cycle-unit")
    assert flows == {"nightly": "sleep-cycle", "dbt-nightly": "dbt-build-then-cycle", "metrics-refresh": "metrics-refresh",
                     "analysis": "analysis",
                     "morning-brief": "morning-brief", "cycle-unit": "cycle-unit"}


def test_serve_builds_each_deployment_for_its_project_with_triggers_narrowed_to_it(make_project):
    settings = make_project(days=1)
    specs = deployment_specs("shop", Path("/srv/shop"))
    assert {s["parameters"]["project_dir"] for s in specs} == {"/srv/shop"}
    assert {t["match"]["prefect.resource.id"] for s in specs for t in s["triggers"]} == {"reverie.project.shop"}
    served = served_flows(settings)
    # cycle-unit is a work pool's; dbt-nightly is a [dbt] project's (tests/test_dbt.py)
    assert [options["name"] for _, options in served] == [d for d in DEPLOYMENTS[:-1] if d != "dbt-nightly"]
    nightly = served[0][1]
    assert nightly["schedules"][0].cron == "0 3 * * *" and nightly["schedules"][0].timezone == "Europe/London"
    assert nightly["concurrency_limit"].collision_strategy.value == "ENQUEUE"
    analysis = served[2][1]
    assert analysis["triggers"][0].match.model_dump() == {"prefect.resource.id": f"reverie.project.{settings.name}"}


def test_the_automation_examples_validate_with_prefects_model_once_a_block_is_named():
    text = (DEPLOYMENTS_DIR / "automations.yaml").read_text().replace("NOTIFY_BLOCK_ID", str(uuid.uuid4()))
    automations = [AutomationCore.model_validate(a) for a in yaml.safe_load(text)["automations"]]
    assert [a.trigger.expect for a in automations] == [{"reverie.insight.risk"},
                                                        {"reverie.cycle.completed", "reverie.cycle.degraded"}]
    assert automations[1].trigger.posture == "Proactive"


@pytest.mark.parametrize("api_url", [None, "http://127.0.0.1:9/api"])
def test_serve_without_a_prefect_server_refuses_in_one_line_saying_how_to_start_one(make_project, api_url):
    settings = make_project(days=1)
    env = {k: v for k, v in __import__("os").environ.items() if k != "PREFECT_API_URL"}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    served = processes.run([Path(sys.executable).parent / "reverie", "serve"], cwd=settings.project_dir, env=env,
                           timeout=120)
    assert served.returncode == 1 and "Traceback" not in served.stderr
    assert len(served.stderr.strip().splitlines()) == 1
    assert "prefect server start" in served.stderr and "PREFECT_API_URL" in served.stderr
    if api_url:
        assert f"no Prefect server answers at {api_url}" in served.stderr


def test_serve_waits_for_a_prefect_server_too_busy_to_answer_at_once():
    """A server that takes the connection but answers its health check only after 12 s (a machine starting up, a
    server busy with its database): `reverie serve` waits for it instead of refusing."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from reverie.flows.serve import check_server

    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(max(0.0, answering_at - time.monotonic()))
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    answering_at = time.monotonic() + 12
    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        with temporary_settings({PREFECT_API_URL: url}):
            assert check_server() == url
        assert time.monotonic() >= answering_at  # it did wait past its first request's 10 s
    finally:
        server.shutdown()
        server.server_close()
