"""A project reading where the data lives — orders in a PostgreSQL table, visits as Parquet objects in S3-compatible
storage — computes the same metrics as the same data landed as files, night after night with rows added, corrected
late and deleted; a database that cannot be reached degrades the cycle and keeps every value."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from reverie.config import load_settings
from reverie.flows.local_run import run_cycle
from reverie.queries import literal
from tests.helpers import postgres
from tests.helpers.landing import write
from tests.helpers.object_storage import s3_server
from tests.helpers.warehouse import query

pytestmark = [pytest.mark.heavy("a PostgreSQL server, an S3 server and four sleep cycles"),
              pytest.mark.needs("postgresql")]

METRICS = """\
metrics:
  - name: revenue
    model: orders
    time_column: ordered_at
    measure: {agg: sum, expr: amount}
    dimensions: [country]
    favourability: up
  - name: visits
    model: visits
    time_column: visited_at
    measure: {agg: count, expr: "*"}
    dimensions: [page]
    favourability: up
"""


def project(folder: Path, sources: str, base_url: str) -> Path:
    write(folder / "reverie.toml", f'{sources}\n[llm]\nbase_url = "{base_url}"\n')
    write(folder / "metrics" / "shop.yml", METRICS)
    return folder


def values(folder: Path) -> list[tuple]:
    return query(load_settings(folder), "select metric, grain, dimension, member, period_start, value "
                                        "from metric_values order by all")


class Places:
    """The data where it lives, and the same data exported as files for the other project."""

    def __init__(self, dsn: str, s3, files: Path) -> None:
        self.dsn, self.s3, self.files = dsn, s3, files
        postgres.execute(dsn, "create table orders (id integer, ordered_at timestamp, amount numeric(10, 2), "
                              "country text)")

    def pg(self, *statements: str) -> None:
        postgres.execute(self.dsn, *statements)

    def export_orders(self, day: int) -> None:
        """The day's orders as they are in the database now, landed as a file."""
        with postgres.attached(self.dsn) as con:
            path = self.files / "orders" / f"day{day:02}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"copy (select * from server.orders where ordered_at::date = date '2026-03-01' + {day - 1}) "
                        f"to {literal(str(path))} (format parquet)")

    def visits(self, day: int) -> None:
        """The day's visits, as an object and as a file."""
        path = self.files / "visits" / f"day{day:02}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        duckdb.execute(f"copy (select timestamp '2026-03-01' + interval ({day - 1}) day + i * interval 7 minute "
                       f"as visited_at, ['/home', '/cart', '/pay'][i % 3 + 1] as page from range({40 + day}) t(i)) "
                       f"to {literal(str(path))} (format parquet)")
        self.s3.client.upload_file(str(path), "lake", f"visits/{path.name}")


@pytest.fixture
def places(tmp_path, monkeypatch):
    with postgres.postgres_server() as dsn, s3_server() as s3:
        monkeypatch.setenv("SHOP_DB", dsn)
        for name, value in s3.environment().items():
            monkeypatch.setenv(name, value)
        yield Places(dsn, s3, tmp_path / "files")


def test_metrics_read_where_the_data_lives_equal_those_of_the_same_data_landed_as_files(tmp_path, places,
                                                                                          scripted_llm, monkeypatch):
    places.pg("insert into orders select i, timestamp '2026-03-01' + i * interval '29 minutes', (i % 37) + 0.5, "
              "(array['FR', 'DE', 'US'])[i % 3 + 1] from generate_series(0, 999) i")  # 20 days and a bit
    for day in range(1, 22):
        places.export_orders(day)
    for day in range(1, 21):
        places.visits(day)
    live = project(tmp_path / "live", '[sources.orders]\nformat = "postgres"\nconnection_env = "SHOP_DB"\n'
                                      'table = "orders"\ntime_column = "ordered_at"\nchunk_rows = 300\n\n'
                                      '[sources.visits]\nformat = "parquet"\npath = "s3://lake/visits/*.parquet"\n'
                                      'time_column = "visited_at"\n', scripted_llm.base_url)
    landed = project(tmp_path / "landed", f'[sources.orders]\nformat = "parquet"\npath = "{places.files}/orders/*.parquet"\n'
                                          'time_column = "ordered_at"\n\n[sources.visits]\nformat = "parquet"\n'
                                          f'path = "{places.files}/visits/*.parquet"\ntime_column = "visited_at"\n',
                     scripted_llm.base_url)
    for folder in (live, landed):
        assert run_cycle(folder)["status"] == "completed"
    assert values(live) == values(landed) and len(values(live)) > 100

    # a night: a new day, a late order, a correction and a deletion inside the look-back, new visits
    places.pg("insert into orders values (2000, timestamp '2026-03-22 09:00', 10, 'FR'), "
              "(2001, timestamp '2026-03-21 20:00', 20, 'DE')",
              "update orders set amount = 500 where id = 990", "delete from orders where id = 991")
    for day in (20, 21, 22):  # orders 990 and 991 are of the evening of the 20th
        places.export_orders(day)
    places.visits(21)
    for folder in (live, landed):
        assert run_cycle(folder)["status"] == "completed"
    assert values(live) == values(landed)
    with postgres.attached(places.dsn) as con:  # the correction counted, the deleted order not
        truth = con.execute("select country, sum(amount)::double from server.orders where ordered_at::date = "
                            "'2026-03-20' group by 1 order by 1").fetchall()
    assert query(load_settings(live), "select member, value from metric_values where metric = 'revenue' and "
                                      "grain = 'day' and dimension = 'country' and period_start = '2026-03-20' "
                                      "order by 1") == truth
    assert any(country == "FR" and amount >= 500 for country, amount in truth)

    # the database unreachable: the cycle degrades, the visits still load, no value of the orders is lost
    before = [row for row in values(live) if row[0] == "revenue"]
    monkeypatch.setenv("SHOP_DB", places.dsn.replace("port=", "port=1"))
    places.visits(22)
    summary = run_cycle(live)
    assert summary["status"] == "degraded"
    (failure,) = summary["stages"]["ingest"]["sources"]["orders"]["failed"]
    assert "Unable to connect" in failure["error"] and "\n" not in failure["error"]
    assert summary["stages"]["ingest"]["sources"]["visits"]["files"] == 1
    assert [row for row in values(live) if row[0] == "revenue"] == before
