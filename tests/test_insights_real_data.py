"""What real data taught the detectors and memory (issue: insights that hold up outside the generator): a share reads
in percentage points, a signed average in its own units, a run of bad days stays several visible changes, a member
that carries a change is named, a surprise is not `info` for being good news, a changepoint found again two days
later is one memory item, and changes that are one story are linked."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from reverie.config import DetectSettings
from reverie.tasks.detect import CANDIDATE_COLUMNS, candidates
from reverie.warehouse import Warehouse

pytestmark = pytest.mark.without_prefect

START = date(2025, 1, 6)  # a Monday
WEEKDAY = np.array([1.0, 1.02, 1.03, 1.0, 0.95, 0.6, 0.65])


def _days(n: int) -> list[datetime]:
    return [datetime.combine(START + timedelta(days=i), datetime.min.time()) for i in range(n)]


def _warehouse(tmp_path, rows: list[tuple], catalogue: list[tuple]) -> Warehouse:
    """Daily metric_values rows (metric, day, dimension, member, value, numerator, denominator, volume) and the
    catalogue (name, measure, favourability, scale)."""
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as con:
        con.executemany("insert into metric_values (metric, grain, period_start, dimension, member, value, numerator, "
                        "denominator, volume, complete, cycle_id) values (?, 'day', ?, ?, ?, ?, ?, ?, ?, true, 'test')",
                        rows)
        con.executemany("insert into metrics (name, measure, favourability, grains, dimensions, definition, "
                        "fingerprint, scale) values (?, ?, ?, ['day'], [], 'test', 'test', ?)", catalogue)
    return warehouse


def _found(warehouse: Warehouse, since: date) -> list[dict]:
    with warehouse.connect() as con:
        return candidates(con, "test", since, DetectSettings())


def test_a_share_reads_in_percentage_points_not_in_thousands_of_percent(tmp_path):
    rng = np.random.default_rng(11)
    days = _days(70)
    rows = []
    for i, day in enumerate(days):
        flights = float(rng.poisson(1000))
        cancelled = float(rng.binomial(int(flights), 0.216 if i == 69 else 0.004))
        rows.append(("cancellation_rate", day, "overall", "all", cancelled / flights, cancelled, flights, flights))
    found = _found(_warehouse(tmp_path, rows, [("cancellation_rate", "ratio", "down", "points")]), days[-1].date())
    [c] = found
    assert c["scale"] == "points" and c["severity"] == "critical"
    pp = 100 * (c["observed"] - c["expected"])
    assert f"cancellation_rate up {pp:.1f} pp (overall) on {days[-1].date()}: {100 * c['observed']:.1f}%" in c["headline"]
    assert f", {100 * c['expected']:.1f}%." in c["headline"] and "%)" not in c["headline"]


def test_a_signed_average_moves_in_its_own_units_when_it_crosses_zero(tmp_path):
    rng = np.random.default_rng(12)
    days = _days(70)
    rows = [("delay", day, "overall", "all", float(rng.normal(6, 2)) if i < 69 else -14.0, None, None, 900.0)
            for i, day in enumerate(days)]
    [c] = _found(_warehouse(tmp_path, rows, [("delay", "avg", "down", "absolute")]), days[-1].date())
    assert c["magnitude"] is None and c["direction"] == "down" and c["favourable"] == "good"
    assert c["headline"].startswith(f"delay down {abs(c['difference']):,.2f} (overall) on {days[-1].date()}: -14 against")
    assert "%" not in c["headline"]


def test_a_run_of_bad_days_is_several_changes_and_the_worst_day_heads_one(tmp_path):
    """Four bad days in a row (the worst the third) used to chain into one change headed by another day."""
    rng = np.random.default_rng(13)
    days = _days(70)
    bad = {65: 0.5, 66: 0.4, 67: 0.05, 68: 0.45}  # share of the usual flights that flew
    rows = [("flights", day, "overall", "all", float(rng.poisson(4000 * WEEKDAY[day.weekday()] * bad.get(i, 1.0))),
             None, None, None) for i, day in enumerate(days)]
    found = _found(_warehouse(tmp_path, rows, [("flights", "count", "up", "relative")]), days[60].date())
    drops = [c for c in found if c["metric"] == "flights" and c["direction"] == "down" and c["grain"] == "day"]
    spans = sorted((c["valid_from"], c["valid_to"]) for c in drops)
    assert len(drops) == 2 and all((to - start).days < 3 for start, to in spans)
    covered = {start + timedelta(days=k) for start, to in spans for k in range((to - start).days + 1)}
    assert covered == {days[i].date() for i in bad}  # each bad day is in memory's span of a change
    assert any(c["period_start"] == days[67].date() for c in drops)  # the worst day heads its change


def test_the_member_that_carries_a_change_is_named_and_a_big_surprise_is_not_info(tmp_path):
    rng = np.random.default_rng(14)
    days = _days(70)
    rows = []
    for i, day in enumerate(days):
        regions = {"latam": 300 * (3.2 if i == 69 else 1), "emea": 1500, "apac": 1200}
        counts = {r: float(rng.poisson(n * WEEKDAY[day.weekday()])) for r, n in regions.items()}
        rows += [("purchases", day, "region", r, n, None, None, n) for r, n in counts.items()]
        total = sum(counts.values())
        rows.append(("purchases", day, "overall", "all", total, None, None, total))
    found = _found(_warehouse(tmp_path, rows, [("purchases", "count", "up", "relative")]), days[-1].date())
    [c] = [c for c in found if c["dimension"] == "overall"]
    assert c["favourable"] == "good" and c["severity"] == "warning"
    assert "; almost all from region latam (x3." in c["headline"]


# --- memory: one change found again, and stories ------------------------------------------------------------------

def _candidate(cycle_id: str, **fields) -> dict:
    row = dict.fromkeys(CANDIDATE_COLUMNS)
    row.update(candidate_id=f"cand-{cycle_id}-{fields.get('metric', 'signups')}", cycle_id=cycle_id,
               detector="trend_change", kind="trend_change", metric="signups", grain="day", dimension="overall",
               member="all", observed=140.0, expected=100.0, magnitude=0.4, difference=40.0, direction="up",
               favourable="good", score=0.5, rank=1, evidence_sql="select 140.0 as value", comparison="before",
               headline="signups moved to a new level", detectors=["trend_change"], scale="relative",
               severity="info", same_change_days=7)
    row.update(fields)
    row.setdefault("valid_from", row["period_start"])
    row.setdefault("valid_to", row["period_end"])
    return row


def _consolidate(warehouse: Warehouse, cycle_id: str, rows: list[dict]) -> dict:
    from reverie.tasks.consolidate import consolidate

    with warehouse.connect() as con:
        for row in rows:
            con.execute(f"insert into candidates ({', '.join(row)}) values ({', '.join('?' * len(row))})",
                        list(row.values()))
    return consolidate.fn(warehouse, cycle_id, None)


def test_a_changepoint_placed_two_days_later_by_the_next_cycle_is_the_same_memory_item(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    first = _candidate("c1", period_start=date(2025, 3, 10), period_end=date(2025, 3, 23))
    assert _consolidate(warehouse, "c1", [first])["added"] == 1
    moved = _candidate("c2", period_start=date(2025, 3, 12), period_end=date(2025, 3, 25), observed=143.0)
    assert _consolidate(warehouse, "c2", [moved])["superseded"] == 1
    with warehouse.connect() as con:
        assert con.execute("select status, valid_from::varchar from memory order by recorded_at").fetchall() == [
            ("superseded", "2025-03-10"), ("active", "2025-03-12")]
    # one that goes the other way, or lies weeks away, is another change
    down = _candidate("c3", period_start=date(2025, 3, 14), period_end=date(2025, 3, 27), observed=90.0,
                      direction="down")
    later = _candidate("c3", candidate_id="cand-later", period_start=date(2025, 5, 5), period_end=date(2025, 5, 18))
    assert _consolidate(warehouse, "c3", [down, later])["added"] == 2


def test_changes_of_one_slice_on_the_same_days_are_linked_as_one_story(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    day = date(2025, 3, 10)
    orders = _candidate("c1", metric="orders", kind="unusual_change", detector="unusual_change", dimension="country",
                        member="DE", period_start=day, period_end=day, same_change_days=1)
    revenue = _candidate("c1", metric="revenue", kind="unusual_change", detector="unusual_change",
                         dimension="country", member="DE", period_start=day, period_end=day, same_change_days=1)
    elsewhere = _candidate("c1", metric="sessions", kind="unusual_change", detector="unusual_change",
                           dimension="country", member="US", period_start=day, period_end=day, same_change_days=1)
    summary = _consolidate(warehouse, "c1", [orders, revenue, elsewhere])
    assert summary["added"] == 3 and summary["linked"] == 1
    with warehouse.connect() as con:
        links = dict(con.execute("select metric, linked_ids from memory").fetchall())
        ids = dict(con.execute("select metric, id from memory").fetchall())
    assert links["orders"] == [ids["revenue"]] and links["revenue"] == [ids["orders"]] and links["sessions"] is None


@pytest.mark.parametrize("declared, expected", [(None, "points"), ("relative", "relative")])
def test_a_share_is_read_in_points_unless_its_metric_says(tmp_path, declared, expected):
    from reverie.tasks.metrics.declarations import MetricSpec
    from reverie.tasks.metrics.refresh import new_values, record_metrics, refresh_start, replace_values

    spec = MetricSpec(name="failure_rate", model="events", time_column="t", scale=declared,
                      ratio={"numerator": {"agg": "count", "filter": "failed"}, "denominator": {"agg": "count"}})
    with Warehouse(tmp_path / "w.duckdb").connect() as con:
        con.execute("create table events as select timestamp '2025-01-01' + to_hours(i) as t, i % 10 = 0 as failed "
                    "from range(100) r(i)")
        since = refresh_start(spec, None, None, False)
        planned = [(spec, since, datetime(2025, 1, 6))]
        replace_values(con, planned, new_values(con, planned, "c1", 15), "c1", 15)
        record_metrics(con, [(spec, None, "")])
        assert con.execute("select scale from metrics").fetchall() == [(expected,)]


def test_a_batch_held_back_is_linked_to_the_drop_in_the_days_it_holds(tmp_path):
    from reverie.tasks.consolidate import _link_stories

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    now = datetime(2025, 3, 12, 6, 0)
    held = "landing/orders/2025-03-10-b.csv"

    def item(memory_id: str, **fields) -> dict:
        return {"id": memory_id, "fingerprint": memory_id, "kind": "unusual_change", "title": memory_id,
                "status": "active", "severity": "warning", "recorded_at": now, "first_seen": now, "last_confirmed": now,
                "source": "detector:unusual_change", "cycle_id": "c1", "dimension": "overall", "member": "all",
                "valid_from": date(2025, 3, 10), "valid_to": date(2025, 3, 10),
                "evidence": '{"observed": 60.0, "expected": 100.0}', **fields}

    rows = [item("mem-drop"), item("mem-rise", evidence='{"observed": 160.0, "expected": 100.0}', dimension="country",
                                   member="US"),
            item("mem-batch", kind="data_quality", source="quality-gate", dimension="batch", member=held,
                 valid_from=None, valid_to=None, evidence="{}")]
    with warehouse.connect() as con:
        for row in rows:
            con.execute(f"insert into memory ({', '.join(row)}) values ({', '.join('?' * len(row))})", list(row.values()))
        con.execute("insert into batches values ('orders', ?, 10, ?, 40, timestamp '2025-03-10 08:00', "
                    "timestamp '2025-03-10 17:00', 'quarantined', 'nulls', 'c1', ?, null, 1)", [held, now, now])
        assert _link_stories(con, "c1", now) == 1
        links = dict(con.execute("select id, linked_ids from memory").fetchall())
    assert links == {"mem-drop": ["mem-batch"], "mem-batch": ["mem-drop"], "mem-rise": None}


def _document(**fields) -> dict:
    """A brief's document (reverie.tasks.deliver.brief_document) with nothing in it but `fields`."""
    return {"project": "shop", "cycle_id": "c1", "reach": "n/a", "metrics_rows": 10, "key_metrics": [], "failed": [],
            "quality": [], "unchecked": [], "new_batches": 0, **fields}


def test_the_brief_leads_with_what_is_new_and_lists_what_is_still_open_compactly():
    from reverie.tasks.deliver.markdown import render_brief

    def item(memory_id: str, news: str | None, severity: str) -> dict:
        return {"id": memory_id, "kind": "unusual_change", "title": f"{memory_id} moved", "body": "",
                "severity": severity, "score": 0.5, "source": "detector:unusual_change", "fingerprint": memory_id,
                "linked_ids": [], "news": news}

    held = {"source": "orders", "batch": "landing/orders/2025-03-10.csv", "held_back": True, "reasons": "nulls"}
    insights = [item("mem-new", "new", "info"), item("mem-changed", "changed", "warning"),
                item("mem-old", None, "critical")]
    brief = render_brief(_document(failed=["metrics: revenue: boom"], quality=[held], key_metrics=[
        {"metric": "orders", "day": datetime(2025, 3, 10), "value": 3.0, "week_before": 4.0, "change": -0.25,
         "scale": "relative"}]), insights)
    headings = [line for line in brief.splitlines() if line.startswith("## ")]
    assert headings == ["## This cycle is degraded", "## New since the last cycle", "## The analyst's notes",
                        "## Data quality", "## Key metrics (latest complete day)", "## Still open"]
    new = brief.split("## New since the last cycle")[1].split("## ")[0]
    still_open = brief.split("## Still open")[1]
    assert "mem-new moved" in new and "changed: mem-changed moved" in new and "mem-old" not in new
    assert "**held back** — `landing/orders/2025-03-10.csv` (orders): nulls" in brief.split("## Key metrics")[0]
    assert still_open.strip().splitlines()[-1] == "- critical · mem-old moved · `mem-old`"


def test_the_brief_lists_a_story_together(tmp_path):
    from reverie.tasks.deliver.markdown import render_brief

    def item(memory_id: str, title: str, score: float, linked: list[str]) -> dict:
        return {"id": memory_id, "kind": "unusual_change", "title": title, "body": "", "severity": "critical",
                "score": score, "source": "detector:unusual_change", "fingerprint": memory_id, "linked_ids": linked,
                "news": "new"}

    insights = [item("mem-orders", "orders down in DE", 0.9, ["mem-revenue", "mem-batch"]),
                item("mem-signups", "signups up", 0.8, []),
                item("mem-revenue", "revenue down in DE", 0.7, ["mem-orders"])]
    brief = render_brief(_document(), insights)
    rows = [line for line in brief.splitlines() if line.startswith("| critical")]
    assert [r.split(" | ")[1] for r in rows] == [
        "orders down in DE (one story with `mem-batch`)", "↳ revenue down in DE", "signups up"]


@pytest.mark.parametrize("growth", [0.002, -0.002])
def test_growth_of_a_fifth_of_a_percent_a_day_is_not_news(tmp_path, growth):
    """A year of a series that grows (or shrinks) 0.2% a day, with its week: no new level, no record, no spike."""
    rng = np.random.default_rng(15)
    days = _days(400)
    rows = [("riders", day, "overall", "all", v, None, None, v) for i, day in enumerate(days)
            for v in [float(rng.poisson(2000 * (1 + growth) ** i * WEEKDAY[day.weekday()]))]]
    warehouse = _warehouse(tmp_path, rows, [("riders", "count", "up", "relative")])
    with warehouse.connect() as con:
        for grain in ("week", "month"):
            con.execute(f"""insert into metric_values by name
                            select metric, '{grain}' as grain, date_trunc('{grain}', period_start) as period_start,
                                   dimension, member, sum(value) as value, sum(volume) as volume,
                                   count(*) = if('{grain}' = 'week', 7, day(last_day(min(period_start)))) as complete,
                                   'test' as cycle_id
                            from metric_values where grain = 'day' group by all""")
    assert _found(warehouse, days[90].date()) == []


def test_the_briefs_key_metrics_read_as_their_scales():
    from reverie.tasks.deliver.markdown import render_brief

    day = datetime(2013, 12, 30)
    key_metrics = [
        {"metric": "cancellation_rate", "day": day, "value": 0.0145, "week_before": 0.0214, "change": -0.322,
         "scale": "points"},
        {"metric": "delay", "day": day, "value": 10.7, "week_before": 32.2, "change": -0.668, "scale": "absolute"},
        {"metric": "flights", "day": day, "value": 968.0, "week_before": 985.0, "change": -0.017, "scale": "relative"}]
    brief = render_brief(_document(key_metrics=key_metrics), [])
    assert "| cancellation_rate | 2013-12-30 | 1.5% | -0.7 pp |" in brief
    assert "| delay | 2013-12-30 | 10.70 | -21.50 |" in brief
    assert "| flights | 2013-12-30 | 968 | -1.7% |" in brief  # a count without decimals
