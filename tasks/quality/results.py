"""Quality results: one outcome per check and batch, stored in quality_results and published as an artifact."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pyarrow as pa
from prefect.artifacts import create_table_artifact
from prefect.context import TaskRunContext

from reverie.commits import transaction
from reverie.queries import sql_file
from reverie.suites import Check

SOURCE_WIDE = "(source)"  # the batch name of results about a whole source


@dataclass
class Outcome:
    """One check on one batch."""
    batch: str
    check: Check
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    sample: list = field(default_factory=list)
    message: str = ""


def save_outcomes(con: duckdb.DuckDBPyConnection, cycle_id: str, suite: str, source: str, outcomes: list[Outcome],
                  now: datetime) -> dict[str, list[str]]:
    """Store every outcome and quarantine the batches with an error; returns each quarantined batch's reasons."""
    reasons: dict[str, list[str]] = defaultdict(list)
    for o in outcomes:
        if not o.success and o.check.severity == "error" and o.batch != SOURCE_WIDE:
            reasons[o.batch].append(o.message)
    if not outcomes:
        return reasons
    results = pa.Table.from_pylist([  # one insert from Arrow: executemany takes a second for a few thousand rows
        {"cycle_id": cycle_id, "suite": suite, "source": source, "batch": o.batch, "expectation": o.check.label,
         "column_name": o.check.column, "severity": o.check.severity, "success": o.success,
         "element_count": o.element_count, "unexpected_count": o.unexpected_count, "sample": json.dumps(o.sample),
         "checked_at": now, "message": o.message or None} for o in outcomes])
    with transaction(con, "quality"):
        # a cycle taken up again checks its batches again: their earlier results give way
        con.execute("delete from quality_results where cycle_id = $cycle_id and source = $source "
                    "and batch in (select unnest($batches::varchar[]))",
                    {"cycle_id": cycle_id, "source": source, "batches": sorted({o.batch for o in outcomes})})
        con.register("new_quality_results", results)
        con.execute("insert into quality_results by name select * from new_quality_results")
        con.unregister("new_quality_results")
        for batch, why in reasons.items():
            con.execute("update batches set status = 'quarantined', reason = $reason where source = $source "
                        "and file = $file", {"reason": "; ".join(why), "source": source, "file": batch})
        if reasons:  # the source reaches only as far as the rows it keeps (a year typed 2926 must not move it)
            con.execute("update source_state set watermark = (select max(last_event) from batches "
                        "where source = $source and status = 'loaded') where source = $source", {"source": source})
    return reasons


def publish_outcomes(source: str, outcomes: list[Outcome]) -> None:
    """A Prefect table artifact of what did not pass (or that everything did), when run as a Prefect task."""
    if TaskRunContext.get() is None:
        return
    failed = [o for o in outcomes if not o.success]
    table = [{"batch": o.batch, "check": o.check.label, "column": o.check.column or "", "severity": o.check.severity,
              "unexpected": o.unexpected_count, "reason": o.message} for o in failed]
    summary = f"{len({o.batch for o in outcomes})} batch(es) checked, {len(failed)} failed check(s)"
    create_table_artifact(key=f"reverie-quality-{source}".replace("_", "-").lower(),
                          table=table or [{"batch": "all", "check": "all", "reason": "every check passed"}],
                          description=f"quality gate for source {source}: {summary}")


def save_unchecked(con: duckdb.DuckDBPyConnection, cycle_id: str, suite: str, source: str, why: str,
                   now: datetime) -> None:
    """Record the source's batches loaded this cycle as unchecked, and why (a cycle taken up again records them anew)."""
    with transaction(con, "quality"):
        con.execute("delete from quality_results where cycle_id = $cycle_id and source = $source",
                    {"cycle_id": cycle_id, "source": source})
        con.execute(sql_file("quality/insert_unchecked.sql"), {"cycle_id": cycle_id, "suite": suite, "source": source,
                                                               "why": why, "now": now})
