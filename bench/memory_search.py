"""Memory search benchmark: latency of `reverie memory search` at 100,000 and 1M memories, against DuckDB's FTS,
and the cost of bringing the index up to a night's changes.

    uv run python -m bench.memory_search                 # 100k and 1M memories, 200 queries
    uv run python -m bench.memory_search --memories 100000 --json

A warehouse gets N memory items phrased like reverie's (detector headlines over 40 metrics, 5
dimensions of 20 members, two years of days; analyst notes in free text), each with its history
row. Then: the time to index them all (a first night), a night's consolidation (1% of the items
changed: half new, half closed) and the time to bring the index up to it, against indexing everything
again; and the latency of 200 searches (two or three words, half of them with a metric, kind or date
filter) through `search_memory`, both in a process that searched before (memory unchanged since: the
warehouse is not opened) and cold (a new process: the warehouse opened to check the index is current,
the index opened), against the same searches with DuckDB's own full-text extension (`match_bm25` over
the same columns, filtered the same way), in the same process.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from bench import report
from reverie.memory import search
from reverie.memory.search import search_memory, update_index
from reverie.warehouse import Warehouse

METRICS = [f"{base}_{suffix}" for base in ("revenue", "orders", "sessions", "signups", "refunds", "margin", "visits",
                                             "tickets") for suffix in ("total", "web", "app", "retail", "b2b")]
DIMENSIONS = {"country": ["US", "DE", "GB", "FR", "BR", "IN", "JP", "CA", "AU", "ES", "IT", "NL", "SE", "MX", "KR",
                          "PL", "TR", "ZA", "AR", "CH"],
              "channel": [f"channel_{i}" for i in range(20)], "device": [f"device_{i}" for i in range(20)],
              "category": [f"category_{i}" for i in range(20)], "plan": [f"plan_{i}" for i in range(20)]}
KINDS = ["unusual_change", "period_over_period", "record", "trend_change", "pattern", "risk", "hypothesis"]
NOTE_WORDS = ("customers churn pricing campaign launch outage payment provider checkout latency mobile app release "
              "holiday promotion competitor stock shortage warehouse shipping delay refund policy fraud spike "
              "weekend weather marketing email newsletter partner integration bug fix onboarding trial upgrade "
              "downgrade enterprise retention cohort acquisition cost margin supplier").split()


def memories(n: int, rng: random.Random) -> pa.Table:
    rows = {k: [] for k in ("id", "fingerprint", "kind", "title", "body", "metric", "dimension", "member",
                            "period_start", "severity", "score", "status", "recorded_at", "first_seen",
                            "last_confirmed", "source", "cycle_id")}
    start = date(2024, 1, 1)
    for i in range(n):
        kind, metric = rng.choice(KINDS), rng.choice(METRICS)
        dimension = rng.choice(list(DIMENSIONS))
        member = rng.choice(DIMENSIONS[dimension])
        day = start + timedelta(days=rng.randrange(730))
        change = rng.uniform(-80, 300)
        if kind in ("pattern", "risk", "hypothesis"):
            title = f"{metric} {' '.join(rng.sample(NOTE_WORDS, 6))} in {dimension} {member}"
            body = " ".join(rng.sample(NOTE_WORDS, 25))
        else:
            title = (f"{metric} {'up' if change > 0 else 'down'} {abs(change):.1f}% ({dimension} {member}) on {day}: "
                     f"{rng.uniform(10, 1e5):,.2f} against the median of the same weekday, {rng.uniform(10, 1e5):,.2f}.")
            body = f"Compared with the median of the same weekday over the previous 4 weeks; seen by: {kind}."
        now = datetime(2026, 1, 1) + timedelta(minutes=i)
        for key, value in (("id", f"mem-{i:08d}"), ("fingerprint", f"{kind}|{metric}|{dimension}={member}|{day}"),
                           ("kind", kind), ("title", title), ("body", body), ("metric", metric),
                           ("dimension", dimension), ("member", member), ("period_start", day),
                           ("severity", rng.choice(["info", "warning", "critical"])), ("score", rng.random()),
                           ("status", rng.choice(["active"] * 4 + ["superseded", "expired"])), ("recorded_at", now),
                           ("first_seen", now), ("last_confirmed", now), ("source", "bench"), ("cycle_id", "bench")):
            rows[key].append(value)
    return pa.table(rows)


def queries(count: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(count):
        metric = rng.choice(METRICS)
        dimension = rng.choice(list(DIMENSIONS))
        words = rng.choice([f"{metric.split('_')[0]} {rng.choice(DIMENSIONS[dimension])}",
                            f"{rng.choice(NOTE_WORDS)} {rng.choice(NOTE_WORDS)} {metric.split('_')[0]}",
                            f"{rng.choice(['up', 'down'])} {rng.choice(DIMENSIONS[dimension])} {rng.choice(NOTE_WORDS)}"])
        filters = [{}, {"metric": metric}, {"kind": rng.choice(KINDS)},
                   {"since": date(2024, 1, 1) + timedelta(days=rng.randrange(600)), "status": "all"}][i % 4]
        if "since" in filters:
            filters["until"] = filters["since"] + timedelta(days=90)
        out.append({"text": words, **filters})
    return out


def duckdb_fts(con, q: dict, limit: int = 20) -> list:
    where = ["($metric is null or metric = $metric)", "($kind is null or kind = $kind)",
             "($status = 'all' or status = $status)", "period_start between $since and $until"]
    return con.execute(f"""select id, score from (
                               select id, fts_main_memory.match_bm25(id, $text) as score from memory
                               where {' and '.join(where)})
                           where score is not null order by score desc limit {limit}""",
                       {"text": q["text"], "metric": q.get("metric"), "kind": q.get("kind"),
                        "status": q.get("status", "active"), "since": q.get("since", date.min),
                        "until": q.get("until", date(9999, 12, 31))}).fetchall()


def night(warehouse: Warehouse, count: int, rng: random.Random) -> int:
    """A night's consolidation: `count` items changed, half of them new, half closed; how many items changed."""
    with warehouse.connect() as con:
        con.register("generated", memories(count // 2, rng))
        con.execute("""insert into memory by name select * replace ('mem-new-' || id as id) from generated""")
        con.execute("""insert into memory_history select id, 'insert', null, null, title, recorded_at, cycle_id
                       from memory where id like 'mem-new-%'""")
        closed = [r[0] for r in con.execute("select id from memory where status = 'active' and id not like 'mem-new-%' "
                                            "order by hash(id) limit $n", {"n": count - count // 2}).fetchall()]
        con.execute("update memory set status = 'expired' where id in (select unnest($ids::varchar[]))", {"ids": closed})
        con.execute("""insert into memory_history select unnest($ids::varchar[]), 'expire', 'status', 'active',
                       'expired', now()::timestamp, 'bench-night'""", {"ids": closed})
    return count // 2 + len(closed)


def percentile(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(p * len(values)))]


def measure(n: int, count: int, workdir: Path) -> dict:
    rng = random.Random(n)
    warehouse = Warehouse(workdir / f"memory-{n}" / "warehouse.duckdb")
    with warehouse.connect() as con:
        con.register("generated", memories(n, rng))
        con.execute("insert into memory by name select * from generated")
        con.execute("""insert into memory_history select id, 'insert', null, null, title, recorded_at, cycle_id
                       from memory""")
    started = time.perf_counter()
    update_index(warehouse)
    index_s = time.perf_counter() - started
    changed = night(warehouse, n // 100, rng)
    started = time.perf_counter()
    update = update_index(warehouse)
    update_s = time.perf_counter() - started
    assert update["indexed"] == changed, update
    plan = queries(count, rng)
    warm, cold, hits = [], [], 0
    for q in plan:
        for latencies in (cold, warm):
            if latencies is cold:
                search._OPEN.clear()  # as a new process finds it
            started = time.perf_counter()
            found = search_memory(warehouse, q["text"], metric=q.get("metric"), kind=q.get("kind"),
                                  status=q.get("status", "active"), since=q.get("since"), until=q.get("until"))
            latencies.append(time.perf_counter() - started)
        hits += bool(found)
    ours = warm
    import duckdb_extension_fts

    extension = Path(duckdb_extension_fts.__file__).parent / "extensions" / "v1.5.5" / "fts.duckdb_extension"
    theirs = []
    with warehouse.connect() as con:
        con.execute(f"load '{extension}'")
        started = time.perf_counter()
        con.execute("pragma create_fts_index('memory', 'id', 'title', 'body', overwrite=1)")
        fts_index_s = time.perf_counter() - started
        for q in plan:
            started = time.perf_counter()
            duckdb_fts(con, q)
            theirs.append(time.perf_counter() - started)
    return {"memories": n, "queries": count, "queries_with_hits": hits, "index_s": round(index_s, 2),
            "night_changed": changed, "update_s": round(update_s, 3), "update_over_index": round(update_s / index_s, 3),
            "p50_ms": round(1000 * statistics.median(ours), 2), "p95_ms": round(1000 * percentile(ours, 0.95), 2),
            "max_ms": round(1000 * max(ours), 2), "cold_p50_ms": round(1000 * statistics.median(cold), 2),
            "cold_p95_ms": round(1000 * percentile(cold, 0.95), 2), "duckdb_fts_index_s": round(fts_index_s, 2),
            "duckdb_fts_p50_ms": round(1000 * statistics.median(theirs), 2),
            "duckdb_fts_p95_ms": round(1000 * percentile(theirs, 0.95), 2),
            "p95_over_duckdb_fts": round(percentile(ours, 0.95) / percentile(theirs, 0.95), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=None)
    report.output_options(parser)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reverie-bench-memory-"))
    rows = [measure(int(n), args.queries, workdir) for n in args.memories.split(",")]
    machine = report.machine()
    result = {"benchmark": "memory_search", "machine": machine, "results": rows}
    report.keep(args, "memory_search", result)
    if args.json:
        print(json.dumps(result))
        return
    print(f"memory search · {machine['cpus']} cores · {machine['platform']}")
    report.print_table(*table(result))


def table(result: dict) -> tuple[tuple, list[tuple]]:
    header = ("memories", "index s", "night: items", "update s", "p50 ms", "p95 ms", "cold p95 ms", "FTS p95 ms",
              "p95 / FTS")
    return header, [(f"{r['memories']:,}", r["index_s"], r["night_changed"], r["update_s"], r["p50_ms"], r["p95_ms"],
                     r["cold_p95_ms"], r["duckdb_fts_p95_ms"], r["p95_over_duckdb_fts"]) for r in result["results"]]


if __name__ == "__main__":
    main()
