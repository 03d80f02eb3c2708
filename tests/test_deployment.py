"""deployments/prefect.yaml, read with Prefect's own model of that file, so a typo cannot land."""

import yaml
from prefect.cli.deploy._models import (
    DeploymentConfig,
    PrefectYamlModel,
    RawScheduleConfig,
)
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint

from reverie.paths import DEPLOYMENTS_DIR, PACKAGE_ROOT


def _raw() -> dict:
    return yaml.safe_load((DEPLOYMENTS_DIR / "prefect.yaml").read_text())


def test_prefect_yaml_validates_with_prefects_model_and_has_no_unknown_keys():
    raw = _raw()
    model = PrefectYamlModel.model_validate(raw)
    assert [d.name for d in model.deployments] == ["nightly"]
    # Prefect's model ignores unknown keys; a misspelt key must not slip through silently
    top_level = {f.alias or name for name, f in PrefectYamlModel.model_fields.items()}
    assert set(raw) <= top_level
    for deployment in raw["deployments"]:
        assert set(deployment) <= set(DeploymentConfig.model_fields)


def test_nightly_schedule_is_a_valid_cron_with_an_explicit_timezone():
    (deployment,) = _raw()["deployments"]
    (schedule,) = deployment["schedules"]
    RawScheduleConfig.model_validate(schedule)  # extra="forbid": no misspelt schedule keys
    assert schedule["timezone"], "cron times are UTC unless a schedule says otherwise"
    cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    assert cron.timezone == "Europe/London"


def test_entrypoint_loads_the_flow_and_parameters_match_its_signature():
    (deployment,) = _raw()["deployments"]
    path, _, name = deployment["entrypoint"].partition(":")
    flow = load_flow_from_entrypoint(f"{PACKAGE_ROOT / path}:{name}")
    assert flow.name == "sleep-cycle"
    assert set(deployment["parameters"]) <= set(flow.parameters.properties)
