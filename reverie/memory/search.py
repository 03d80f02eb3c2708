"""Memory search: a tantivy full-text index of the memory table, ranked by BM25, with filters.

The memory table is the truth; the index is derived from it (each hit carries the fields a result
shows, so a search reads no rows) and rebuilt whenever memory changed
(every change appends to memory_history, so its row count is the memory's version). Each build goes
to a folder of its own and is marked complete last, so a reader never sees half an index and a
crash mid-build leaves the previous one in place.
"""

from __future__ import annotations

import calendar
import json
import re
import shutil
from datetime import date, datetime
from pathlib import Path

import tantivy

from reverie.warehouse import Warehouse, rows_as_dicts

INDEX_FOLDER = "memory-index"
PREPARED = "prepared_answer"
COMPLETE = "complete"
TEXT_FIELDS = ["title", "body"]
SHOWN = ("id", "kind", "title", "body", "status", "severity", "score", "metric", "dimension", "member",
         "strftime(period_start, '%Y-%m-%d') as period", "period_start", "source", "cycle_id", "flow_run_id",
         "feedback")


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("title", stored=False)
    builder.add_text_field("body", stored=False)
    for exact in ("kind", "metric", "status"):
        builder.add_text_field(exact, stored=False, tokenizer_name="raw")
    builder.add_date_field("period", indexed=True, fast=True)
    builder.add_text_field("item", stored=True, tokenizer_name="raw")  # what a hit shows: no second read
    return builder.build()


def _version(con) -> int:
    return con.execute("select count(*) from memory_history").fetchone()[0]


def _folder(warehouse: Warehouse, version: int) -> Path:
    return warehouse.folder / INDEX_FOLDER / f"v{version}"


def rebuild_index(warehouse: Warehouse) -> Path:
    """Index every memory item (all statuses) as of now; older builds are removed."""
    with warehouse.connect() as con:
        version = _version(con)
        rows = rows_as_dicts(con.execute(
            f"select {', '.join(SHOWN)}, coalesce(body, '') as text from memory"))  # SHOWN: a constant list
    folder = _folder(warehouse, version)
    if (folder / COMPLETE).exists():
        return folder
    building = folder.with_name(f"{folder.name}.building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    schema = _schema()
    index = tantivy.Index(schema, path=str(building))
    writer = index.writer(heap_size=64_000_000, num_threads=1)
    for row in rows:
        period = row.pop("period_start")
        fields = {"id": row["id"], "kind": row["kind"], "metric": row["metric"] or "", "status": row["status"],
                  "title": row["title"], "body": row.pop("text"), "item": json.dumps(row, default=str)}
        if period is not None:
            fields["period"] = datetime.combine(period, datetime.min.time())
        writer.add_document(tantivy.Document(**fields))
    writer.commit()
    writer.wait_merging_threads()
    (building / COMPLETE).touch()
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    for old in folder.parent.iterdir():
        if old != folder and not old.name.endswith(".building"):
            shutil.rmtree(old, ignore_errors=True)
    return folder


def _period_query(schema, low: date, high: date) -> tantivy.Query:
    """Items whose period starts between two days, both included."""
    return tantivy.Query.range_query(schema, "period", tantivy.FieldType.Date, datetime.combine(low, datetime.min.time()),
                                     datetime.combine(high, datetime.min.time()))


_OPEN: dict[Path, tantivy.Index] = {}  # opened indexes, per build folder: opening one costs more than a search


def _index(warehouse: Warehouse, version: int) -> tantivy.Index:
    folder = _folder(warehouse, version)
    if not (folder / COMPLETE).exists():
        folder = rebuild_index(warehouse)
    if folder not in _OPEN:
        _OPEN.clear()
        _OPEN[folder] = tantivy.Index.open(str(folder))
    return _OPEN[folder]


MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name} | {
    name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
MONTH = re.compile(r"\b(\d{4})-(\d{2})\b")
NAMED_MONTH = re.compile(rf"\b({'|'.join(sorted(MONTHS, key=len, reverse=True))})\b(?:\s+(\d{{4}}))?", re.IGNORECASE)
YEARS = range(2000, 2100)  # a month named without a year: that month in any of these years


def periods_in(text: str) -> tuple[str, list[tuple[date, date]]]:
    """The text without the dates and months it names, and the periods they stand for: `2026-02-05` (that day),
    `2026-02` or `February 2026` (that month), `February` or `feb` (that month in any year). A date is a period
    to look in, not a word: searching for one day must not rank first every item that mentions its year."""
    periods: list[tuple[date, date]] = []

    def month(year: int, number: int) -> tuple[date, date]:
        return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])

    def day(m: re.Match) -> str:
        try:
            periods.append((date.fromisoformat(m.group(0)),) * 2)
        except ValueError:
            return m.group(0)  # not a date (2026-13-40): words
        return " "

    def numbered_month(m: re.Match) -> str:
        if not 1 <= int(m.group(2)) <= 12:
            return m.group(0)
        periods.append(month(int(m.group(1)), int(m.group(2))))
        return " "

    def named_month(m: re.Match) -> str:
        number = MONTHS[m.group(1).lower()]
        years = [int(m.group(2))] if m.group(2) else YEARS
        periods.extend(month(year, number) for year in years)
        return " "

    text = NAMED_MONTH.sub(named_month, MONTH.sub(numbered_month, DAY.sub(day, text)))
    return text, periods


def search_memory(warehouse: Warehouse, text: str, metric: str | None = None, kind: str | None = None,
                  status: str = "active", since: date | None = None, until: date | None = None,
                  limit: int = 20) -> list[dict]:
    """Memory items matching `text` in title or body, most relevant first, within the filters (prepared answers
    only when their kind is asked for); dates and months in the text narrow the periods searched."""
    with warehouse.connect() as con:
        version = _version(con)
    index = _index(warehouse, version)
    schema = index.schema
    text, named_periods = periods_in(text)
    # plain lowercase words: no field:value, quotes, +/- or AND/OR/NOT/IN/TO from users (the index is lowercase)
    words = re.sub(r"[^\w.]+", " ", text).lower().strip()
    query = index.parse_query(words, TEXT_FIELDS) if words else tantivy.Query.all_query()
    must = [(tantivy.Occur.Must, query)]
    for field, value in (("metric", metric), ("kind", kind), ("status", None if status == "all" else status)):
        if value:
            must.append((tantivy.Occur.Must, tantivy.Query.term_query(schema, field, value)))
    if kind is None:  # prepared answers are found by their question (`reverie ask`), not among insights
        must.append((tantivy.Occur.MustNot, tantivy.Query.term_query(schema, "kind", PREPARED)))
    if since or until:
        must.append((tantivy.Occur.Must, _period_query(schema, since or date.min, until or date(9999, 12, 31))))
    if named_periods:
        any_of = [(tantivy.Occur.Should, _period_query(schema, low, high)) for low, high in named_periods]
        must.append((tantivy.Occur.Must, tantivy.Query.boolean_query(any_of)))
    searcher = index.searcher()
    hits = searcher.search(tantivy.Query.boolean_query(must), limit).hits
    return [{**json.loads(searcher.doc(address)["item"][0]), "relevance": round(score, 4)} for score, address in hits]
