"""Detect: deterministic insight candidates over metric_values, ranked by score."""

from __future__ import annotations

from dataclasses import asdict

from prefect import task

from reverie.config import DetectSettings
from tasks.logs import run_logger
from tasks.warehouse import connect, sql_file, transaction

DETECTORS = ("unusual_change",)


@task(name="detect")
def detect_candidates(warehouse: str, cycle_id: str, since: str | None, settings: DetectSettings) -> dict:
    """Run every detector over the periods recomputed this cycle and store ranked candidates."""
    logger = run_logger()
    if since is None:
        return {"candidates": 0, "by_detector": {}}
    params = {"cycle_id": cycle_id, "since": since, **asdict(settings)}
    with connect(warehouse) as con, transaction(con):
        con.execute("delete from candidates where cycle_id = ?", [cycle_id])
        by_detector = {}
        for detector in DETECTORS:
            con.execute(f"""insert into candidates by name
                            select *, 0 as rank from ({sql_file(f'detect/{detector}.sql')})""", params)
            by_detector[detector] = con.execute(
                "select count(*) from candidates where cycle_id = ? and detector = ?", [cycle_id, detector]).fetchone()[0]
        con.execute("""update candidates set rank = ranked.rank
                       from (select candidate_id, row_number() over (order by score desc, candidate_id) as rank
                             from candidates where cycle_id = $cycle_id) as ranked
                       where candidates.candidate_id = ranked.candidate_id""", {"cycle_id": cycle_id})
    total = sum(by_detector.values())
    logger.info("detect: %d candidate(s) since %s", total, since)
    return {"candidates": total, "by_detector": by_detector}
