"""Files in object storage: a parquet source on an S3-compatible server the tests start (moto's, checking signatures)
loads new objects, reloads a replaced one, keeps a removed one's rows, and fails alone — in one line, without the
credentials — on wrong credentials or an endpoint that does not answer."""

from __future__ import annotations

import io

import duckdb
import pyarrow.parquet
import pytest

from reverie.config import load_settings
from reverie.tasks.ingest import ingest_source
from tests.helpers.object_storage import s3_server
from tests.helpers.warehouse import query, rows_by_file

pytestmark = pytest.mark.without_prefect


@pytest.fixture(scope="module")
def server():
    with s3_server() as s3:
        yield s3


def put_day(s3, prefix: str, day: int, rows: int) -> None:
    """The day's orders as one Parquet object, `rows` orders of amount `day`."""
    with duckdb.connect() as con:
        table = con.sql(f"select timestamp '2026-03-{day:02} 10:00' + i * interval 1 minute as ordered_at, "
                        f"{day} as amount from range({rows}) t(i)").to_arrow_table()
    buffer = io.BytesIO()
    pyarrow.parquet.write_table(table, buffer)
    s3.client.put_object(Bucket="lake", Key=f"{prefix}/day{day:02}.parquet", Body=buffer.getvalue())


@pytest.fixture
def project(server, tmp_path, monkeypatch, request):
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    prefix = f"orders-{abs(hash(request.node.name)) % 10**8}"
    (tmp_path / "reverie.toml").write_text(f'[sources.orders]\nformat = "parquet"\npath = "s3://lake/{prefix}/*.parquet"\n'
                                           'time_column = "ordered_at"\n')
    settings = load_settings(tmp_path)
    cycles = iter(range(1, 100))
    return (settings, prefix,
            lambda: ingest_source.fn(settings.warehouse, str(tmp_path), settings.sources["orders"], f"c{next(cycles)}"))


def totals(settings) -> list[tuple]:
    return query(settings, rows_by_file("orders", "count(*)", "sum(amount)"))


def test_objects_added_replaced_and_removed_load_like_files(server, project):
    settings, prefix, cycle = project
    put_day(server, prefix, 1, 10)
    put_day(server, prefix, 2, 20)
    first = cycle()
    assert (first["files"], first["rows"], first["failed"]) == (2, 30, [])
    url = f"s3://lake/{prefix}/day"
    assert totals(settings) == [(f"{url}01.parquet", 10, 10), (f"{url}02.parquet", 20, 40)]
    assert cycle()["files"] == 0  # nothing changed: nothing read again

    put_day(server, prefix, 2, 5)  # day 2 replaced by a corrected export
    put_day(server, prefix, 3, 7)
    server.client.delete_object(Bucket="lake", Key=f"{prefix}/day01.parquet")
    third = cycle()
    assert (third["files"], third["rows"], third["failed"]) == (2, 12, [])
    # the replaced object's rows replace its old ones; a removed object's rows stay, as a removed file's do
    assert totals(settings) == [(f"{url}01.parquet", 10, 10), (f"{url}02.parquet", 5, 10), (f"{url}03.parquet", 7, 21)]
    assert third["watermark"] == "2026-03-03T10:06:00"


@pytest.mark.reliability("fault")
@pytest.mark.parametrize("trouble", ["wrong secret", "unreachable endpoint"])
def test_storage_that_cannot_be_read_fails_the_source_alone_without_the_credentials(server, project, monkeypatch,
                                                                                    trouble, caplog):
    settings, prefix, cycle = project
    put_day(server, prefix, 1, 10)
    assert cycle()["failed"] == []
    put_day(server, prefix, 2, 20)
    if trouble == "wrong secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "Wr0ngSecretWr0ngSecret")
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    summary = cycle()
    (failure,) = summary["failed"]
    assert "\n" not in failure["error"] and failure["error"].startswith("source orders: ")
    said = failure["error"] + caplog.text + str(query(settings, "select * from source_state"))
    assert server.secret not in said and "Wr0ngSecretWr0ngSecret" not in said
    assert {"wrong secret": "403", "unreachable endpoint": "127.0.0.1:9"}[trouble] in failure["error"]
    assert totals(settings) == [(f"s3://lake/{prefix}/day01.parquet", 10, 10)]  # what was loaded is kept
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    assert cycle()["files"] == 1  # the next cycle carries on
