"""Memory search: a tantivy full-text index of the memory table, ranked by BM25, with filters.

Words are stemmed in English ("refunds" finds "refund"), a member's aliases find it ("germany" finds DE, see
`aliases.py`), and a word that names an item's subject (its metric or slice) counts twice a word of its text.

The memory table is the truth; the index is derived from it (each hit carries the fields a result
shows, so a search reads no rows). Every change to memory appends to memory_history, which nothing
deletes from: its row count is the memory's version, and its rows past the version the index holds
name the items to index again. The index keeps that version in a document of its own, committed with
the items, so a crash mid-update leaves the last committed index and the next update redoes the rest.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import shutil
import time
from datetime import date, datetime
from pathlib import Path

import tantivy

from reverie.memory.aliases import read_aliases
from reverie.queries import rows_as_dicts
from reverie.warehouse import Warehouse

INDEX_FOLDER = "memory-index"
ITEMS_FOLDER = "items-sliced"  # a new name when the schema changes: the old folder is replaced, rebuilt whole
PREPARED = "prepared_answer"
VERSION_ID = "~version"  # the id of the document holding the version: no memory id starts with "~"
WRITER_WAIT_SECONDS = 60.0  # another process updating the index: wait for it, it is doing our work
TEXT_FIELDS = ["subject", "title", "body"]
SUBJECT_BOOST = 2.0
EXACT_FIELDS = ("kind", "metric", "status", "dimension", "member", "severity")  # filters: lowercase, whole values
SHOWN = ("id", "kind", "title", "body", "status", "severity", "score", "metric", "dimension", "member",
         "strftime(period_start, '%Y-%m-%d') as period", "period_start", "source", "cycle_id", "flow_run_id",
         "feedback")


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    for text in TEXT_FIELDS:
        builder.add_text_field(text, stored=False, tokenizer_name="en_stem")
    for exact in EXACT_FIELDS:
        builder.add_text_field(exact, stored=False, tokenizer_name="raw")
    builder.add_date_field("period", indexed=True, fast=True)
    builder.add_text_field("item", stored=True, tokenizer_name="raw")  # what a hit shows: no second read
    return builder.build()


def _version(con) -> int:
    return con.execute("select count(*) from memory_history").fetchone()[0]


def _folder(warehouse: Warehouse) -> Path:
    return warehouse.folder / INDEX_FOLDER / ITEMS_FOLDER


def _open_index(warehouse: Warehouse) -> tantivy.Index:
    """The index, created empty the first time (a folder left by an older release is replaced)."""
    folder = _folder(warehouse)
    if not folder.exists():
        for old in (folder.parent.iterdir() if folder.parent.exists() else []):
            shutil.rmtree(old, ignore_errors=True)
        folder.mkdir(parents=True)
    return tantivy.Index(_schema(), path=str(folder))


def indexed_version(index: tantivy.Index) -> int | None:
    """The memory version the index holds, None for an index never written."""
    index.reload()
    searcher = index.searcher()
    hits = searcher.search(tantivy.Query.term_query(index.schema, "id", VERSION_ID), 1).hits
    return json.loads(searcher.doc(hits[0][1])["item"][0])["version"] if hits else None


def _writer(index: tantivy.Index):
    """The index's one writer; another process updating it is waited for (tantivy allows one at a time)."""
    deadline = time.monotonic() + WRITER_WAIT_SECONDS
    while True:
        try:
            return index.writer(heap_size=64_000_000, num_threads=1)
        except ValueError as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _document(row: dict) -> tantivy.Document:
    period = row.pop("period_start")
    subject = " ".join(part for part in ((row["metric"] or "").replace("_", " "), row["member"] or "") if part)
    fields = {"id": row["id"], **{f: (row[f] or "").lower() for f in EXACT_FIELDS}, "subject": subject,
              "title": row["title"], "body": row.pop("text"), "item": json.dumps(row, default=str)}
    if period is not None:
        fields["period"] = datetime.combine(period, datetime.min.time())
    return tantivy.Document(**fields)


def update_index(warehouse: Warehouse) -> dict:
    """Bring the index up to the memory table: the items changed since the version it holds are indexed again
    (all of them the first time). Returns the version and how many items were indexed."""
    index = _open_index(warehouse)
    writer = _writer(index)
    try:
        held = indexed_version(index)  # read with the writer held: nobody moves it meanwhile
        with warehouse.connect() as con:
            version = _version(con)
            if held == version:
                return {"version": version, "indexed": 0}
            whole = held is None or held > version  # a version that went back: a warehouse restored from a copy
            # history only grows: the rows past the version are the new ones (DuckDB numbers rows as appended)
            changed = "" if whole else "where id in (select memory_id from memory_history where rowid >= $held)"
            rows = rows_as_dicts(con.execute(f"select {', '.join(SHOWN)}, coalesce(body, '') as text from memory "
                                             f"{changed}", {} if whole else {"held": held}))  # SHOWN: a constant list
        if whole:
            writer.delete_all_documents()
        for row in rows:
            if not whole:
                writer.delete_documents_by_term("id", row["id"])
            writer.add_document(_document(row))
        writer.delete_documents_by_term("id", VERSION_ID)
        writer.add_document(tantivy.Document(id=VERSION_ID, kind="~", status="~",
                                             item=json.dumps({"version": version})))
        writer.commit()
        writer.wait_merging_threads()
    except BaseException:
        writer.rollback()
        raise
    _OPEN.pop(_folder(warehouse), None)
    return {"version": version, "indexed": len(rows)}


def _period_query(schema, low: date, high: date) -> tantivy.Query:
    """Items whose period starts between two days, both included."""
    return tantivy.Query.range_query(schema, "period", tantivy.FieldType.Date, datetime.combine(low, datetime.min.time()),
                                     datetime.combine(high, datetime.min.time()))


# Opened indexes, with the warehouse file's state when each was last found current and the members' aliases then:
# while the file and its write-ahead log are untouched, memory cannot have changed, and a search need not open it.
_OPEN: dict[Path, tuple[tantivy.Index, tuple, dict[str, tuple[str, str]]]] = {}


def _file_state(warehouse: Warehouse) -> tuple | None:
    if warehouse.lake:  # written by other processes through its catalog: checked at every search
        return None
    return tuple((s.st_mtime_ns, s.st_size) if (s := _stat(p)) else None
                 for p in (warehouse.path, Path(f"{warehouse.path}.wal")))


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _current_index(warehouse: Warehouse) -> tuple[tantivy.Index, dict[str, tuple[str, str]]]:
    """The index, brought up to the memory table if it is behind, and the members' aliases."""
    folder, state = _folder(warehouse), _file_state(warehouse)
    if state is not None and folder in _OPEN and _OPEN[folder][1] == state:
        return _OPEN[folder][0], _OPEN[folder][2]
    with warehouse.connect() as con:  # the state was read first: a write after it is seen by the next search
        version = _version(con)
        aliases = read_aliases(con)
    index = _OPEN[folder][0] if folder in _OPEN else _open_index(warehouse)
    if indexed_version(index) != version:
        update_index(warehouse)
        index.reload()
    _OPEN.clear()
    _OPEN[folder] = (index, state, aliases)
    return index, aliases


MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name} | {
    name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
MONTH = re.compile(r"\b(\d{4})-(\d{2})\b")
NAMED_MONTH = re.compile(rf"\b({'|'.join(sorted(MONTHS, key=len, reverse=True))})\b(?:\s+(\d{{4}}))?", re.IGNORECASE)
YEARS = range(2000, 2100)  # a month named without a year: that month in any of these years
EARLIEST, LATEST = date(1678, 1, 1), date(2262, 1, 1)  # the index's dates are nanoseconds since 1970: no wider


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


def _members_named(aliases: dict[str, tuple[str, str]], words: str) -> list[str]:
    """The members whose aliases the words name ("germany": DE)."""
    padded = f" {words} "
    return sorted({member.lower() for alias, (_, member) in aliases.items() if f" {alias} " in padded})


def search_memory(warehouse: Warehouse, text: str, metric: str | None = None, kind: str | None = None,
                  status: str = "active", since: date | None = None, until: date | None = None,
                  limit: int = 20, dimension: str | None = None, member: str | None = None,
                  severity: str | None = None) -> list[dict]:
    """Memory items matching `text` in title or body, most relevant first, within the filters (prepared answers
    only when their kind is asked for; a slice is a dimension, a member of it, or both); dates and months in the
    text narrow the periods searched."""
    index, aliases = _current_index(warehouse)
    schema = index.schema
    text, named_periods = periods_in(text)
    # plain lowercase words: no field:value, quotes, +/- or AND/OR/NOT/IN/TO from users (the index is lowercase)
    words = re.sub(r"[^\w.]+", " ", text).lower().strip()
    words = " ".join([words, *_members_named(aliases, words)]).strip()
    query = (index.parse_query(words, TEXT_FIELDS, field_boosts={"subject": SUBJECT_BOOST}) if words
             else tantivy.Query.all_query())
    must = [(tantivy.Occur.Must, query)]
    filters = {"metric": metric, "kind": kind, "status": None if status == "all" else status, "dimension": dimension,
               "member": member, "severity": severity}
    for field, value in filters.items():
        if value:
            must.append((tantivy.Occur.Must, tantivy.Query.term_query(schema, field, value.lower())))
    if kind is None:  # prepared answers are found by their question (`reverie ask`), not among insights
        must.append((tantivy.Occur.MustNot, tantivy.Query.term_query(schema, "kind", PREPARED)))
    must.append((tantivy.Occur.MustNot, tantivy.Query.term_query(schema, "id", VERSION_ID)))
    if since or until:
        must.append((tantivy.Occur.Must, _period_query(schema, since or EARLIEST, until or LATEST)))
    if named_periods:
        any_of = [(tantivy.Occur.Should, _period_query(schema, low, high)) for low, high in named_periods]
        must.append((tantivy.Occur.Must, tantivy.Query.boolean_query(any_of)))
    searcher = index.searcher()
    hits = searcher.search(tantivy.Query.boolean_query(must), limit).hits
    return [{**json.loads(searcher.doc(address)["item"][0]), "relevance": round(score, 4)} for score, address in hits]
