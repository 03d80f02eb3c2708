"""Cycle bookkeeping: when a sleep cycle began, how it ended."""

from __future__ import annotations

import json
from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.ask.recorded import move_pending_asks
from reverie.commits import transaction
from reverie.logs import run_logger
from reverie.queries import execute_script, sql_file
from reverie.snapshot import mark_finished, mark_running
from reverie.summaries import Stages, failures
from reverie.warehouse import Warehouse


@task(name="start-cycle", cache_policy=NO_CACHE)  # bookkeeping writes: never cached
def start_cycle(warehouse: Warehouse, cycle_id: str, flow_run_id: str | None) -> None:
    """Record that a sleep cycle has begun (and leave word of it for `reverie ask`), and record the asks kept aside
    while the last one held the warehouse."""
    mark_running(warehouse, cycle_id)
    with warehouse.connect() as con:
        move_pending_asks(con, warehouse.folder)
        # a cycle taken up again keeps its start and is now this flow run's
        with transaction(con):
            execute_script(con, sql_file("cycles/start_cycle.sql"),
                           {"cycle_id": cycle_id, "flow_run_id": flow_run_id, "now": datetime.now()})


@task(name="take-up-interrupted-cycle", cache_policy=NO_CACHE)
def take_up_interrupted(warehouse: Warehouse) -> str | None:
    """The id of a cycle whose run died or failed before finishing it, to be run again under that id (every stage
    redoes its own writes for a cycle whole, so nothing lands twice); None when there is none. Called with the
    writer lock."""
    with warehouse.connect() as con, transaction(con):
        interrupted = [row[0] for row in con.execute(sql_file("cycles/take_up_interrupted.sql")).fetchall()]
        if not interrupted:
            return None
        taken, *others = interrupted
        if others:  # their batches are checked, computed and remembered with the one taken up
            con.execute("update batches set cycle_id = $taken where cycle_id in (select unnest($others::varchar[]))",
                        {"taken": taken, "others": others})
            con.execute("update cycles set status = 'interrupted', finished_at = coalesce(finished_at, $now) "
                        "where cycle_id in (select unnest($others::varchar[]))", {"now": datetime.now(), "others": others})
    run_logger().warning("taking up cycle %s again: the run that started it did not finish it", taken)
    return taken


@task(name="finish-cycle", cache_policy=NO_CACHE)
def finish_cycle(warehouse: Warehouse, cycle_id: str, status: str, stages: Stages, seconds: float) -> None:
    """Record how a sleep cycle ended."""
    mark_finished(warehouse)
    with warehouse.connect() as con:
        con.execute("update cycles set finished_at = $now, status = $status, stages = $stages, seconds = $seconds "
                    "where cycle_id = $cycle_id",
                    {"now": datetime.now(), "status": status, "stages": json.dumps(stages, default=str),
                     "seconds": seconds, "cycle_id": cycle_id})


@task(name="refreshed-cycles", cache_policy=NO_CACHE)
def refreshed_cycles(warehouse: Warehouse) -> list[str]:
    """The cycles a metrics refresh left for reflect to continue, oldest first."""
    with warehouse.connect() as con:
        return [row[0] for row in con.execute(
            "select cycle_id from cycles where status = 'refreshed' order by started_at").fetchall()]


@task(name="resume-cycle", cache_policy=NO_CACHE)
def resume_cycle(warehouse: Warehouse, cycle_id: str) -> tuple[Stages, float]:
    """Take up a refreshed cycle again (leaving word of it for `reverie ask`): the stages and seconds it has so far."""
    mark_running(warehouse, cycle_id)
    with warehouse.connect() as con:
        stages, seconds = con.execute("update cycles set status = 'running' where cycle_id = $cycle_id "
                                      "returning stages, seconds", {"cycle_id": cycle_id}).fetchone()
    return json.loads(stages), seconds or 0.0


@task(name="latest-cycle", cache_policy=NO_CACHE)  # a cycle may have ended since: never cached
def latest_cycle(warehouse: Warehouse) -> dict | None:
    """The newest cycle that ended with a brief (completed or degraded): its id, the metric values it refreshed and
    what it lost (reverie.summaries.failures)."""
    with warehouse.connect() as con:
        row = con.execute("select cycle_id, coalesce(try_cast(stages->>'$.metrics.rows' as bigint), 0), stages "
                          "from cycles where status in ('completed', 'degraded') order by started_at desc limit 1"
                          ).fetchone()
    if row is None:
        return None
    stages = json.loads(row[2]) if row[2] else {}
    stages.pop("deliver", None)  # the brief is delivered again: its channels' errors are the new delivery's
    return {"cycle_id": row[0], "metrics_rows": row[1], "failed": failures(stages)}
