"""A DuckLake as the warehouse: one setting switches a project to it, and its cycles write what the DuckDB file's do.

Two projects get the same generated data, one on the default DuckDB file, one on a DuckLake (a SQLite catalog, and
a PostgreSQL one started by the test); each runs the same nights, and every metric value, memory item, batch and
quality result is compared row for row."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import tantivy
from typer.testing import CliRunner

from reverie.cli.commands import app
from reverie.config import ConfigError, load_settings
from reverie.flows.local_run import run_cycle
from reverie.generator import generate
from reverie.memory.search import _open_index, update_index
from reverie.summaries import failures
from reverie.tasks.detect.registry import load_detectors
from tests.helpers import processes
from tests.helpers.postgres import postgres_server
from tests.helpers.prefect_server import BIN, Server
from tests.helpers.projects import START, new_project
from tests.helpers.scripted_llm import tool_call

COMPARED = {  # what a night leaves, in a form both warehouses give alike (sums in parallel differ in the last bits)
    "metric_values": "select metric, grain, period_start, dimension, member, round(value, 6), complete "
                     "from metric_values order by all",
    # a stale source's title says how long ago its newest row is, in tenths of a day of the wall clock: runs minutes
    # apart on either side of a tenth read differently, so the age is left out
    "memory": "select kind, fingerprint, regexp_replace(title, '[0-9.]+ days ago', 'N days ago'), status, severity, "
              "round(score, 6) from memory order by all",
    "memory_history": "select change, field, count(*) from memory_history group by all order by all",
    "batches": "select source, file, rows, first_event, last_event, status from batches order by all",
    "quality_results": "select batch, expectation, column_name, success, unexpected_count from quality_results "
                       "order by all",
    "cycles": "select status from cycles order by started_at",
    "llm_calls": "select purpose, outcome, count(*) from llm_calls group by all order by all",
}


def finish(request):
    return tool_call("finish", {"summary": "nothing to add"})


def night_rows(settings) -> dict[str, list]:
    with settings.warehouse.connect() as con:
        return {table: con.execute(sql).fetchall() for table, sql in COMPARED.items()}


def two_nights(settings) -> list[dict]:
    """A first cycle on 40 days, then one more day and a second cycle; their summaries."""
    first = run_cycle(settings.project_dir)
    generate(settings.landing_dir, 1, start=START + timedelta(days=40), seed=7, scale=0.3)
    return [first, run_cycle(settings.project_dir)]


@pytest.fixture(scope="module")
def file_nights(tmp_path_factory, session_llm):
    """The reference: the same nights on the default DuckDB file."""
    session_llm.script(finish)
    settings = new_project(tmp_path_factory.mktemp("file") / "shop", days=40, base_url=session_llm.base_url)
    summaries = two_nights(settings)
    return settings, summaries, night_rows(settings)


def lake_project(folder, session_llm, catalog: str):
    """A project switched to a lake the way a person does it: the template's `catalog` line set."""
    settings = new_project(folder / "shop", days=40, base_url=session_llm.base_url)
    config = settings.project_dir / "reverie.toml"
    line = '# catalog = "sqlite:.reverie/lake.sqlite"'
    assert line in config.read_text()
    config.write_text(config.read_text().replace(line, f"catalog = {json.dumps(catalog)}", 1))
    return load_settings(settings.project_dir)


def test_a_project_on_a_sqlite_catalogued_lake_writes_what_the_file_does(tmp_path, file_nights, session_llm,
                                                                         monkeypatch):
    session_llm.script(finish)
    settings = lake_project(tmp_path, session_llm, "sqlite:.reverie/lake.sqlite")
    assert settings.warehouse.lake is not None
    summaries = two_nights(settings)
    assert [s["status"] for s in summaries] == [s["status"] for s in file_nights[1]]
    assert [s["stages"]["metrics"]["rows"] for s in summaries] == [s["stages"]["metrics"]["rows"]
                                                                    for s in file_nights[1]]
    lake, reference = night_rows(settings), file_nights[2]
    for table in COMPARED:
        assert lake[table] == reference[table], table
    assert sum(len(rows) for rows in lake.values()) > 1000
    # everything lives in the lake: its catalog and its Parquet files; no DuckDB file was made
    folder = settings.warehouse.folder
    assert (folder / "lake.sqlite").exists() and list((folder / "lake").rglob("*.parquet"))
    assert not settings.warehouse.path.exists()
    # the wake-time half reads it too: memory search and `reverie ask`
    monkeypatch.chdir(settings.project_dir)
    with settings.warehouse.connect() as con:
        metric, title = con.execute("select metric, title from memory where status = 'active' and metric is not null "
                                    "and kind != 'prepared_answer' order by title limit 1").fetchone()
    found = CliRunner().invoke(app, ["memory", "search", metric, "--json"])
    assert found.exit_code == 0, found.output
    assert title in [item["title"] for item in json.loads(found.stdout)["items"]], found.stdout
    # the index took in the second night's changes by the lake's row numbers: every item once, nothing left
    index = _open_index(settings.warehouse)
    assert update_index(settings.warehouse)["indexed"] == 0
    index.reload()
    with settings.warehouse.connect() as con:
        items = dict(con.execute("select id, status from memory").fetchall())
    searcher = index.searcher()
    assert searcher.num_docs == len(items) + 1
    for memory_id, status in items.items():
        (hit,) = searcher.search(tantivy.Query.term_query(index.schema, "id", memory_id), 2).hits
        assert json.loads(searcher.doc(hit[1])["item"][0])["status"] == status
    assert "superseded" in items.values() or "expired" in items.values()  # the second night changed some
    asked = CliRunner().invoke(app, ["ask", "what was revenue yesterday?", "--json"])
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.stdout)["answer"]


def test_a_bad_catalog_setting_is_named(tmp_path):
    (tmp_path / "reverie.toml").write_text('[lake]\ncatalog = "mysql:db"\n')
    with pytest.raises(ConfigError, match=r"\[lake\] catalog = 'mysql:db': must start with sqlite: or postgres:"):
        load_settings(tmp_path)


@pytest.mark.heavy("a PostgreSQL server")
@pytest.mark.needs("postgresql")
def test_a_group_of_metrics_whose_commit_loses_a_race_writes_its_values_again_and_lands_whole(tmp_path, file_nights,
                                                                                        session_llm):
    """Another writer of the lake deletes from metric_values while a group of metrics is about to commit: the group's
    commit conflicts, the group writes its values again, and the night ends as the file's did. (PostgreSQL: a SQLite
    catalog refuses the other writer outright.)"""
    session_llm.script(finish)
    with postgres_server() as dsn:
        night_on_a_raced_lake(lake_project(tmp_path, session_llm, f"postgres:{dsn}"), file_nights[2])


def night_on_a_raced_lake(settings, reference: dict) -> None:
    """The two nights, the second by `reverie run` paused before its group of metrics commits, the first time while
    another writer commits, and compared with `reference`."""
    run_cycle(settings.project_dir)
    generate(settings.landing_dir, 1, start=START + timedelta(days=40), seed=7, scale=0.3)
    env = {**os.environ, "REVERIE_FAULT_POINT": "metrics:before-commit", "REVERIE_FAULT_RESUME": "stdin"}
    paused, stderr = 0, []
    with processes.started([BIN / "reverie", "run", "--json"], cwd=settings.project_dir, env=env, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as night:
        for line in night.stderr:  # each time the group is about to commit
            stderr.append(line)
            if "fault point reached: metrics:before-commit" not in line:
                continue
            paused += 1
            if paused == 1:  # the other writer: a row in, then out again, while the group's values are uncommitted
                with settings.warehouse.connect() as con:
                    con.execute("insert into metric_values by name "
                                "select 'another_writers' as metric, * exclude (metric) from metric_values limit 1")
                    con.execute("delete from metric_values where metric = 'another_writers'")
            night.stdin.write("\n")
            night.stdin.flush()
        assert night.wait(timeout=600) == 0, "".join(stderr)[-3000:]
        result = json.loads(night.stdout.read())
    assert result["status"] == "completed"
    assert paused == 2, "".join(stderr)[-3000:]  # the first commit lost the race; the second landed
    assert result["stages"]["metrics"]["commits_retried"] == 1
    assert "Traceback" not in "".join(stderr)
    lake = night_rows(settings)
    for table in COMPARED:
        assert lake[table] == reference[table], table


@pytest.mark.heavy("a PostgreSQL server")
@pytest.mark.needs("postgresql")
def test_a_project_on_a_postgres_catalogued_lake_writes_what_the_file_does(tmp_path, file_nights, session_llm):
    session_llm.script(finish)
    with postgres_server() as dsn:
        settings = lake_project(tmp_path, session_llm, f"postgres:{dsn}")
        summaries = two_nights(settings)
        assert [s["status"] for s in summaries] == [s["status"] for s in file_nights[1]]
        lake = night_rows(settings)
    for table in COMPARED:
        assert lake[table] == file_nights[2][table], table


EXTRA_SOURCES = {"events_b": 8, "events_c": 9}  # two more sources like the demo's, other seeds: other rows
SOURCES_TOML = "".join(f"""
[sources.{name}]
format = "parquet"
path = "landing_{name}/events/**/*.parquet"
time_column = "event_time"
suite = "demo_events"
""" for name in EXTRA_SOURCES)
EXTRA_METRICS = "metrics:\n" + "".join(f"""
  - name: {name}_orders
    description: Orders in {name}.
    model: {name}
    time_column: event_time
    measure: {{agg: count}}
    filter: event_type = 'order'
    grains: [day, week]
    dimensions: [country, category]
  - name: {name}_revenue
    description: Paid revenue in {name}.
    model: {name}
    time_column: event_time
    measure: {{agg: sum, expr: amount}}
    filter: status = 'paid'
    dimensions: [category]
""" for name in EXTRA_SOURCES)


def three_sources(folder, session_llm, catalog: str | None = None, spread: str = "workers = 2"):
    """A project of three sources, each with metrics of its own, and two analysts, on the DuckDB file, or on a lake
    whose work is spread as `spread` says (two Dask workers)."""
    settings = new_project(folder / "shop", days=40, base_url=session_llm.base_url, toml=SOURCES_TOML)
    config = settings.project_dir / "reverie.toml"
    config.write_text(config.read_text().replace("[llm]\n", "[llm]\nanalysts = 2\n", 1).replace(
        "[detect]\n", "[detect]\nmin_abs_z = 2.0\npop_min_z = 2.5\n", 1))  # candidates of several metrics
    (settings.metrics_dir / "more.yml").write_text(EXTRA_METRICS)
    for name, seed in EXTRA_SOURCES.items():
        generate(settings.project_dir / f"landing_{name}", 40, start=START, seed=seed, scale=0.3)
    if catalog:
        line = '# catalog = "sqlite:.reverie/lake.sqlite"'
        config.write_text(config.read_text().replace(line, f"catalog = {json.dumps(catalog)}\n{spread}", 1))
    return load_settings(settings.project_dir)


def three_source_nights(settings) -> list[dict]:
    """Two nights, every source a day further on the second."""
    first = run_cycle(settings.project_dir)
    for landing, seed in [("landing", 7), *((f"landing_{name}", seed) for name, seed in EXTRA_SOURCES.items())]:
        generate(settings.project_dir / landing, 1, start=START + timedelta(days=40), seed=seed, scale=0.3)
    return [first, run_cycle(settings.project_dir)]


def unit_task_runs(flow_run_id: str) -> dict[str, list[tuple]]:
    """The flow run's units of work (a source's refresh, a group of metrics, a detector, an analyst), by name: when
    each started and ended."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    units = {}
    for run in runs:
        if run.name.startswith(("refresh-", "metrics-", "detect-", "analyst-")):
            units.setdefault(run.name.split("-")[0], []).append((run.name, run.start_time, run.end_time))
    return {kind: sorted(found) for kind, found in units.items()}


def at_once(runs: list[tuple]) -> bool:
    """Whether some of these task runs ran at the same time."""
    return any(start < other_end and other_start < end for i, (_, start, end) in enumerate(runs)
               for _, other_start, other_end in runs[i + 1:])


UNITS = {"refresh": ["refresh-events", "refresh-events_b", "refresh-events_c"],
         "metrics": ["metrics-events", "metrics-events_b", "metrics-events_c"],
         "detect": sorted(f"detect-{name}" for name in load_detectors())}


@pytest.fixture(scope="module")
def three_source_file(tmp_path_factory, session_llm):
    """The reference for the spread runs: two nights of the three sources in one process on the DuckDB file."""
    session_llm.script(finish)
    reference = three_sources(tmp_path_factory.mktemp("file"), session_llm)
    return reference, three_source_nights(reference), night_rows(reference)


@pytest.mark.heavy("a PostgreSQL server and a Dask cluster")
@pytest.mark.needs("postgresql")
def test_two_workers_on_a_postgres_lake_write_what_one_process_writes_on_the_file(tmp_path, session_llm,
                                                                                   three_source_file):
    session_llm.script(finish)
    _, one_process, file = three_source_file
    analysts = []
    for summary in one_process:  # the same units of work, one after another (the analysts: threads, at once)
        units = unit_task_runs(summary["flow_run_id"])
        analysts.append([name for name, *_ in units.pop("analyst")])
        assert {kind: [name for name, *_ in runs] for kind, runs in units.items()} == UNITS
        assert not any(at_once(runs) for runs in units.values())
        assert summary["stages"]["reflect"]["analysts"] == 2
    with postgres_server() as dsn:
        settings = three_sources(tmp_path / "lake", session_llm, f"postgres:{dsn}")
        assert settings.workers.count == 2
        two_workers = three_source_nights(settings)
        lake = night_rows(settings)
        with settings.warehouse.connect() as con:  # every source's batches were checked
            checked = {source for (source,) in con.execute("select distinct source from quality_results").fetchall()}
        assert checked >= {"events", "events_b", "events_c"}
    assert [s["status"] for s in two_workers] == [s["status"] for s in one_process] == ["completed", "completed"]
    for summary, analysts_of_night in zip(two_workers, analysts):  # each unit of work: on the Dask workers
        units = unit_task_runs(summary["flow_run_id"])
        assert [name for name, *_ in units.pop("analyst")] == analysts_of_night
        assert {kind: [name for name, *_ in runs] for kind, runs in units.items()} == UNITS
        assert at_once(units["refresh"]), units  # (a group of these few metrics may end before the next starts)
        assert sorted(summary["stages"]["ingest"]["sources"]) == ["events", "events_b", "events_c"]
    assert [s["stages"]["ingest"]["files"] for s in two_workers] == [120, 3]
    assert [s["stages"]["metrics"]["metrics"] for s in two_workers] == [s["stages"]["metrics"]["metrics"]
                                                                         for s in one_process] == [11, 11]
    assert {metric for metric, *_ in file["metric_values"]} >= {"events_b_orders", "events_c_revenue"}
    for table in COMPARED:
        assert lake[table] == file[table], table


def unit_flow_runs(server, parent_flow_run_id: str) -> list[dict]:
    """The `cycle-unit` flow runs a cycle's run created on the work pool, by name."""
    parent = server.http.post("/task_runs/filter", json={
        "flow_runs": {"id": {"any_": [parent_flow_run_id]}}}).raise_for_status().json()
    runs = server.http.post("/flow_runs/filter", json={
        "flow_runs": {"parent_task_run_id": {"any_": [t["id"] for t in parent]}}}).raise_for_status().json()
    return sorted(runs, key=lambda run: run["name"])


def test_each_unit_goes_to_a_pool_worker_as_names_and_values_and_the_worker_rebuilds_the_same_call(make_project):
    """What a flow run of `cycle-unit` carries (JSON, as the Prefect server keeps it) is enough for a worker to call the
    unit as the cycle would have; the warehouse and the settings stay out of it."""
    from reverie.flows.stages import refresh_source, source_call
    from reverie.flows.workers import UNITS, unit_call, unit_parameters
    from reverie.tasks.detect import detector_findings
    from reverie.tasks.ingest import ingest_source
    from reverie.tasks.metrics import plan_metrics, refresh_metric_group
    from reverie.tasks.reflect import analyst

    settings = make_project(days=3)
    for source in settings.sources.values():
        ingest_source.fn(settings.warehouse, str(settings.project_dir), source, "c1")
    plan = plan_metrics(settings.warehouse, "c1", settings.sources, str(settings.models_dir),
                        str(settings.metrics_dir), quality_dir=str(settings.quality_dir))
    assert plan.groups and not plan.errors
    calls = [(refresh_source, source_call(settings, settings.sources["events"], "c1")),
             (refresh_metric_group, {"warehouse": settings.warehouse, "cycle_id": "c1", "group": plan.groups[0],
                                     "full_refresh": True, "grace_minutes": 15}),
             (detector_findings, {"warehouse": settings.warehouse, "settings": settings.detect,
                                  "detector": load_detectors(settings.detectors_dir)["record"],
                                  "since": START + timedelta(days=1)}),
             (analyst, {"warehouse": settings.warehouse, "cycle_id": "c1", "metrics": ["orders", "revenue"],
                        "settings": settings.llm, "log_dir": str(settings.warehouse.folder / "logs")})]
    assert [unit.name for unit, _ in calls] == list(UNITS)  # every unit of work a pool takes
    for unit, call in calls:
        name, parameters = unit_parameters(unit, call)
        sent = json.loads(json.dumps(parameters))
        assert not {"warehouse", "settings"} & set(sent), unit.name
        rebuilt, rebuilt_call = unit_call(settings, unit.name, sent)
        assert rebuilt is unit and rebuilt_call == call, unit.name
    assert [unit_parameters(unit, call)[0] for unit, call in calls] == [
        "events", plan.groups[0].name, "record", "orders-revenue"]


@pytest.mark.heavy("a PostgreSQL server, a Prefect server and two pool workers")
@pytest.mark.needs("postgresql")
def test_two_prefect_workers_on_a_work_pool_write_what_one_process_writes_on_the_file(tmp_path, session_llm,
                                                                                       three_source_file):
    """Each source's ingest and gate, each group of metrics and each detector as a flow run that one of two `prefect
    worker start` processes takes (one run at a time each), the cycle run by `reverie run` against the same Prefect
    server."""
    session_llm.script(finish)
    _, one_process, file = three_source_file
    analysts = [[name for name, *_ in unit_task_runs(summary["flow_run_id"])["analyst"]] for summary in one_process]
    server = Server(tmp_path / "prefect")
    logs = [tmp_path / f"worker-{i}.log" for i in (1, 2)]
    try:
        with server.pool_workers(logs), postgres_server() as dsn:
            settings = three_sources(tmp_path / "lake", session_llm, f"postgres:{dsn}", 'pool = "reverie-process"')
            assert settings.workers.pool == "reverie-process" and not settings.workers.dask

            def night() -> dict:
                done = processes.run([BIN / "reverie", "run", "--json"], cwd=settings.project_dir,
                                     env=server.env, timeout=900)
                assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
                return json.loads(done.stdout)

            first = night()
            for landing, seed in [("landing", 7), *((f"landing_{n}", seed) for n, seed in EXTRA_SOURCES.items())]:
                generate(settings.project_dir / landing, 1, start=START + timedelta(days=40), seed=seed, scale=0.3)
            on_pool = [first, night()]
            lake = night_rows(settings)
            units = [unit_flow_runs(server, summary["flow_run_id"]) for summary in on_pool]
    finally:
        server.stop()
    assert [s["status"] for s in on_pool] == [s["status"] for s in one_process] == ["completed", "completed"], \
        [failures(s["stages"]) for s in on_pool + one_process]
    assert [s["stages"]["ingest"]["files"] for s in on_pool] == [120, 3]
    expected = ([f"refresh-source-{name}" for name in ("events", "events_b", "events_c")] +
                [f"metrics-{name}" for name in ("events", "events_b", "events_c")] +
                [f"detector-{name}" for name in load_detectors()])
    for runs, analysts_of_night in zip(units, analysts):  # a flow run per unit, two of them at the same time
        assert len(analysts_of_night) == 2
        assert [run["name"] for run in runs] == sorted(expected + analysts_of_night)
        assert {run["state_type"] for run in runs} == {"COMPLETED"}
        assert {run["work_pool_name"] for run in runs} == {"reverie-process"}
        assert at_once([(run["name"], run["start_time"], run["end_time"]) for run in runs]), runs
    for table in COMPARED:
        assert lake[table] == file[table], table
    for log in logs:
        assert not failures_in(log.read_text()), log.read_text()[-3000:]


def failures_in(log: str) -> list[str]:
    """A worker log's ERROR lines and the frames of reverie's own code in its tracebacks. Prefect's events stream
    reconnecting on a busy machine logs a WARNING with a traceback inside Prefect only, and is not a run's failure."""
    root = str(Path(__file__).resolve().parent.parent)
    frames = [line for line in log.splitlines() if line.strip().startswith(f'File "{root}/')
              and "/.venv/" not in line]
    return frames + [line for line in log.splitlines() if "| ERROR" in line]


def test_workers_need_a_catalog_several_processes_can_write(tmp_path):
    (tmp_path / "reverie.toml").write_text('[lake]\nworkers = 2\n')
    with pytest.raises(ConfigError, match=r"\[lake\] workers needs \[lake\] catalog: only one process"):
        load_settings(tmp_path)
    (tmp_path / "reverie.toml").write_text('[lake]\ncatalog = "sqlite:lake.sqlite"\nscheduler = "tcp://dask:8786"\n')
    with pytest.raises(ConfigError, match=r"\[lake\] scheduler needs a PostgreSQL catalog: .* 'database is locked'"):
        load_settings(tmp_path)


def test_a_work_pool_without_its_server_deployment_or_workers_is_named_and_nothing_waits_for_ever(tmp_path,
                                                                                                  monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from reverie.flows import workers
    from reverie.flows.cycle_unit import run_cycle_unit
    from reverie.flows.stages import refresh_source, source_call
    from reverie.flows.workers import PoolUnavailable, run_on_pool

    (tmp_path / "reverie.toml").write_text('[lake]\npool = "reverie-process"\n')
    with pytest.raises(ConfigError, match=r"\[lake\] pool needs \[lake\] catalog"):
        load_settings(tmp_path)
    (tmp_path / "reverie.toml").write_text('[lake]\ncatalog = "postgres:dbname=reverie host=/nowhere"\n'
                                           'pool = "reverie-process"\n[sources.events]\npath = "landing/*.parquet"\n')
    settings = load_settings(tmp_path)

    def refresh_on_pool(settings) -> list:
        return run_on_pool(settings, refresh_source, [source_call(settings, settings.sources["events"], "c1")])

    with pytest.raises(PoolUnavailable, match=r"no deployment cycle-unit/cycle-unit on the Prefect server; "
                                              r"deploy deployments/prefect.yaml"):
        refresh_on_pool(settings)  # the test harness's server has no deployments
    with temporary_settings({PREFECT_API_URL: None}):
        with pytest.raises(PoolUnavailable, match=r"needs a Prefect server its workers reach: set PREFECT_API_URL"):
            refresh_on_pool(settings)
    with get_client(sync_client=True) as client:  # the deployment, on a pool of no workers
        client.create_work_pool(WorkPoolCreate(name="reverie-idle", type="process"), overwrite=True)
        deployment_id = run_cycle_unit.to_deployment("cycle-unit", work_pool_name="reverie-idle").apply()
        try:
            with pytest.raises(PoolUnavailable, match=r"pool = 'reverie-process', but the deployment "
                                                      r"cycle-unit/cycle-unit runs on the work pool 'reverie-idle'"):
                refresh_on_pool(settings)
            monkeypatch.setattr(workers, "POOL_START_SECONDS", 3)
            config = tmp_path / "reverie.toml"
            config.write_text(config.read_text().replace('pool = "reverie-process"', 'pool = "reverie-idle"'))
            idle = load_settings(tmp_path)
            with pytest.raises(PoolUnavailable, match=r"pool = 'reverie-idle': no worker took 1 of the refresh-source "
                                                      r"flow runs within 3 s \(cancelled\); start one: prefect worker "
                                                      r"start --pool reverie-idle"):
                refresh_on_pool(idle)
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
            assert [run.state.type.value for run in runs] == ["CANCELLED"]
        finally:
            client.delete_deployment(deployment_id)
        deployment_id = run_cycle_unit.to_deployment("cycle-unit").apply()  # as a served process has it: no pool
        try:
            with pytest.raises(PoolUnavailable, match=r"pool = 'reverie-process', but the deployment "
                                                      r"cycle-unit/cycle-unit is on no work pool \(a served copy\); "
                                                      r"deploy deployments/prefect.yaml to the pool"):
                refresh_on_pool(settings)
        finally:
            client.delete_deployment(deployment_id)


def test_a_catalogs_password_is_not_shown(tmp_path):
    (tmp_path / "reverie.toml").write_text('[lake]\ncatalog = "postgres:dbname=reverie password=s3cret host=db"\n')
    shown = str(load_settings(tmp_path).warehouse)
    assert "s3cret" not in shown and "dbname=reverie" in shown
    (tmp_path / "reverie.toml").write_text('[lake]\ncatalog = "mysql:dbname=reverie password=s3cret"\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path)
    assert "s3cret" not in str(refused.value) and "mysql:dbname=reverie" in str(refused.value)
