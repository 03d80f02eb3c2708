"""The demo data generator: deterministic, appendable, labelled."""

import json
from datetime import date, timedelta

import duckdb
import pyarrow.parquet as pq
import pytest

from reverie.generator import generate

pytestmark = pytest.mark.without_prefect

START = date(2026, 3, 2)


def _read_all(landing):
    return duckdb.sql(f"select * from read_parquet('{landing}/events/*/*.parquet', hive_partitioning = false) order by event_id").fetchall()


def test_same_seed_same_data_and_appending_continues_the_stream(tmp_path):
    generate(tmp_path / "a", 50, start=START, seed=3, scale=0.1)
    generate(tmp_path / "b", 30, start=START, seed=3, scale=0.1)
    generate(tmp_path / "b", 20)
    a, b = _read_all(tmp_path / "a"), _read_all(tmp_path / "b")
    assert len(a) > 10_000
    assert a == b
    assert (tmp_path / "a" / "labels.jsonl").read_text() == (tmp_path / "b" / "labels.jsonl").read_text()


def test_other_seed_other_data(tmp_path):
    generate(tmp_path / "a", 3, start=START, seed=1, scale=0.1)
    generate(tmp_path / "b", 3, start=START, seed=2, scale=0.1)
    assert _read_all(tmp_path / "a") != _read_all(tmp_path / "b")


def test_shape_partitions_and_labels(tmp_path):
    result = generate(tmp_path, 70, start=START, seed=5, scale=0.2)
    partitions = sorted(p.name for p in (tmp_path / "events").iterdir())
    assert partitions[0] == f"date={START}" and partitions[-1] == f"date={START + timedelta(days=69)}"
    table = pq.read_table(tmp_path / "events" / partitions[10] / "part-0.parquet")
    assert set(table.column("event_type").to_pylist()) == {"session", "signup", "order"}
    assert {"country", "channel", "device", "category", "amount", "status"} <= set(table.column_names)
    labels = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert result["planted_events"] == len(labels) >= 2
    assert all(START <= date.fromisoformat(label["start"]) <= START + timedelta(days=69) for label in labels)
    # weekly seasonality: Saturdays are quieter than Wednesdays
    daily = duckdb.sql(f"""select dayofweek(event_time::date) as dow, count(*) as n
                           from read_parquet('{tmp_path}/events/*/*.parquet') where event_type = 'session'
                           group by 1""").fetchall()
    by_dow = dict(daily)
    assert by_dow[6] < 0.9 * by_dow[3]


def test_scale_multiplies_volume(tmp_path):
    small = generate(tmp_path / "s", 7, start=START, seed=1, scale=0.1)["rows"]
    large = generate(tmp_path / "l", 7, start=START, seed=1, scale=0.5)["rows"]
    assert 4 < large / small < 6


def test_appending_with_another_seed_is_refused(tmp_path):
    generate(tmp_path, 2, start=START, seed=1, scale=0.1)
    with pytest.raises(ValueError, match="--seed 1"):
        generate(tmp_path, 2, seed=9)
    with pytest.raises(ValueError, match="continues on"):
        generate(tmp_path, 2, start=START)
