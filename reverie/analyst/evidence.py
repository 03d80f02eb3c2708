"""Evidence queries traced to the data: which result columns the warehouse's tables produce, and what each value is about.

A number counts as evidence only if it comes out of the data. Each result column of an evidence query
is traced (sqlglot's lineage, through CTEs, subqueries and every branch of a UNION) to the table
columns it is computed from; a column that comes from no table — a literal, VALUES, range(), a table
function — mixes the data with a number of its own (`value * 0 + 37.5`) or comes out the same whatever
the data holds (`value - value + 37`, `value / value * 100`) is a constant, and grounds nothing. Each
value is also given its subject from its lineage: the metric, slice and period of its row, read from
the row's `metric`, `dimension`, `member` and date columns where those are the stored columns of the
same rows (a literal `'revenue' as metric` labels nothing), or from the query's filters
(`where metric = 'revenue' and member = 'DE'`), or, for a query over a model's rows, the metrics built
on that model.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import date

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify

from reverie.analyst.grounding import OVERALL, Cell, Subject, Vocabulary
from reverie.analyst.sandbox import Overran, QueryResult, as_date, bounded, sandbox_connection, started
from reverie.migrations import own_tables
from reverie.models import ModelError, referenced_tables
from reverie.queries import sql_file

# reverie's tables whose rows each belong to one metric and one slice
METRIC_STORES = {"metric_values", "candidates", "memory", "agent_insights"}
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Pow)
# numbers that scale or shift a value without making one up: percent, thousands, per day/week/hour, 1 - share
SCALES = {1.0, 10.0, 100.0, 1e3, 1e6, 1e9, 7.0, 12.0, 24.0, 52.0, 60.0, 365.0, 3600.0, 86400.0}
SHIFTS = {0.0, 1.0}
# a row's own label columns: they say what its numbers are about when they are the stored columns of that row
LABELS = ("metric", "dimension", "member")
TRIAL_ROWS = (3, 5, 8)  # a column's value is tried on tables of random numbers this long: one that never changes is
# not evidence (row counts differ, so count(*) and row_number() do)
# aggregates that pick one row's value (a real value of the data), as against ones that make a new quantity
PICKS = (exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue, exp.ArgMax, exp.ArgMin, exp.AnyValue)
AGGREGATES = {"sum": "total", "avg": "average", "count": "count", "countif": "count", "max": "highest",
              "min": "lowest", "median": "median", "stddev": "spread", "stddevpop": "spread", "stddevsamp": "spread",
              "variance": "spread", "variancepop": "spread", "quantile": "percentile", "percentilecont": "percentile",
              "percentiledisc": "percentile", "approxquantile": "percentile"}
# over a model's rows, an aggregate is the value of the metrics that measure it that way
MEASURED_AS = {"total": {"sum"}, "count": {"count", "count_distinct"}, "average": {"avg"}, "highest": {"max"},
               "lowest": {"min"}, "share": {"ratio"}}
TRACE_SECONDS = 5.0  # tracing is pure Python over the query's tree: a query of self-joins can make it take minutes


@dataclass
class Catalog(Vocabulary):
    """What evidence is matched against: the metrics (with their measures) and members of slices the words are
    matched with, and the tables each metric is built from."""
    reads: dict[str, set[str]] = field(default_factory=dict)  # metric -> its model and every table upstream

    def metrics_reading(self, table: str) -> set[str]:
        return {m for m, tables in self.reads.items() if table in tables}


def _views(con) -> dict[str, set[str]]:
    """The tables each view of the warehouse reads (its own CTEs excluded)."""
    reads = {}
    for name, sql in con.execute(sql_file("analyst/view_definitions.sql")).fetchall():
        try:
            reads[name.lower()] = {table.lower() for table in referenced_tables(sql, name)}
        except ModelError:
            continue
    return reads


def load_catalog(warehouse) -> Catalog:
    """The metrics, their lineage and the members of their slices, read once per analyst run."""
    catalog = Catalog()
    with sandbox_connection(warehouse) as con:
        views = _views(con)
        for name, measure, model in con.execute("select name, measure, model from metrics").fetchall():
            catalog.metrics[name] = measure
            upstream, pending = set(), [(model or "").lower()]
            while pending:
                table = pending.pop()
                if table and table not in upstream and table not in own_tables():  # reverie's own tables are no one's data
                    upstream.add(table)
                    pending += views.get(table, set())
            catalog.reads[name] = upstream
        catalog.members = {m for (m,) in con.execute(
            "select distinct member from metric_values where dimension <> 'overall' limit 20000").fetchall()}
        catalog.latest_day = con.execute(sql_file("analyst/latest_complete_day.sql")).fetchone()[0]
    return catalog


@dataclass
class ColumnTrace:
    """One result column: whether the data produces it, why not, which tables it reads, what its filters say."""
    data: bool
    why: str = ""
    tables: set[str] = field(default_factory=set)
    filters: dict[str, set] = field(default_factory=dict)  # column name -> the values it is filtered to
    reads: set[tuple] = field(default_factory=set)  # which FROM items (by place in the query) its rows come from
    stored: str | None = None  # the table column it is, unchanged (through CTEs and subqueries), if it is one
    aggregate: str | None = None  # the new quantity it computes over rows: total, average, count, share, ...


def _literal_number(node: exp.Expression) -> float | None:
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return float(node.this)
        except ValueError:
            return None
    return None


def _invented(projection: exp.Expression) -> str | None:
    """A number the projection puts into its result itself, beyond scaling (x 100) or a default (coalesce(x, 0))."""
    for literal in projection.find_all(exp.Literal):
        number = _literal_number(literal)
        if number is None:
            continue
        parent = literal.parent
        while isinstance(parent, exp.Paren | exp.Cast | exp.Neg | exp.TryCast):
            parent = parent.parent
        if parent is None or parent is projection or isinstance(parent, exp.Alias):
            continue  # the whole column is the literal: lineage finds no table for it
        if any(isinstance(a, exp.Predicate) for a in _ancestors(literal, projection)):
            continue  # a condition: it picks rows or branches, it is not a value
        if isinstance(parent, exp.Mul | exp.Div | exp.IntDiv):
            if number in SCALES:
                continue
        elif isinstance(parent, exp.Add | exp.Sub):
            if number in SHIFTS:
                continue
        elif isinstance(parent, ARITHMETIC):
            pass
        elif isinstance(parent, exp.If | exp.Case | exp.Coalesce | exp.Greatest | exp.Least | exp.Nullif
                        | exp.AggFunc) and not isinstance(parent, exp.Count):
            if number in SHIFTS:
                continue
        else:
            continue  # a function's parameter: round(x, 2), quantile_cont(x, 0.5), lag(x, 7)
        return literal.sql()
    return None


_EVALUATOR: duckdb.DuckDBPyConnection | None = None
_EVALUATOR_LOCK = threading.Lock()


def _evaluator() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that reads nothing outside itself, for trying projections on made-up rows."""
    global _EVALUATOR
    if _EVALUATOR is None:
        _EVALUATOR = duckdb.connect(config={"enable_external_access": False, "memory_limit": "64MB",
                                            "temp_directory": "", "autoload_known_extensions": False})
        _EVALUATOR.execute("set lock_configuration = true")
    return _EVALUATOR


def _independent(projection: exp.Expression) -> bool:
    """Whether a projection comes out the same whatever its columns hold: `value - value + 37`, `value / value *
    100`, `length('...') + value - value`. Tried on TRIAL_ROWS tables of random numbers standing for its columns;
    one that cannot be tried (a string function of a number, a subquery) is not called constant."""
    expression = projection.this if isinstance(projection, exp.Alias) else projection
    columns = sorted({c.sql() for c in expression.find_all(exp.Column)})
    if not columns or expression.find(exp.Query, exp.Star):
        return False
    names = {column: f"c{i}" for i, column in enumerate(columns)}
    tried = expression.copy().transform(
        lambda n: exp.column(names[n.sql()]) if isinstance(n, exp.Column) and n.sql() in names else n)
    rng = random.Random(len(columns))
    outcomes = []
    with _EVALUATOR_LOCK:
        con = _evaluator()
        for count in TRIAL_ROWS:
            rows = ", ".join("(" + ", ".join(f"{rng.uniform(-1000, 1000):.3f}::decimal(18, 3)" for _ in columns) + ")"
                             for _ in range(count))
            try:
                found = con.execute(f"select {tried.sql(dialect='duckdb')} from (values {rows}) t({', '.join(names.values())})"
                                    ).fetchall()
            except duckdb.Error:
                return False
            outcomes.append({value for (value,) in found if value is not None})
    return len(outcomes[0]) == 1 and all(o == outcomes[0] for o in outcomes)


def _aggregate(projection: exp.Expression) -> str | None:
    """The new quantity a projection computes over many rows (total, average, count, share of two aggregates, ...),
    or None: a row's own value, or one row's value picked by lag(), first_value(), arg_max() and such."""
    found = [f for f in projection.find_all(exp.AggFunc) if not isinstance(f, PICKS)]
    if not found:
        return None
    division = projection.find(exp.Div)
    if division is not None and division.left.find(exp.AggFunc) and division.right.find(exp.AggFunc):
        return "share"
    return AGGREGATES.get(type(found[0]).__name__.lower(), "aggregate")


def _stored_column(projection: exp.Expression) -> bool:
    """Whether a projection is a column as it is (renamed at most)."""
    return isinstance(projection.this if isinstance(projection, exp.Alias) else projection, exp.Column)


def _place(node: exp.Expression) -> tuple:
    """Where a node sits in its query (the same across lineage's copies of the tree)."""
    place = []
    while node.parent is not None:
        place.append((node.arg_key, node.index))
        node = node.parent
    return tuple(reversed(place))


def _ancestors(node: exp.Expression, stop: exp.Expression):
    node = node.parent
    while node is not None and node is not stop:
        yield node
        node = node.parent


def _conjuncts(condition: exp.Expression | None) -> list[exp.Expression]:
    if condition is None:
        return []
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    return [condition]


def _value(node: exp.Expression):
    """The constant a filter compares with: a string, a date, or None."""
    while isinstance(node, exp.Cast | exp.Paren):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        text = node.this
        try:
            return date.fromisoformat(text[:10]) if len(text) >= 10 and text[4] == "-" and text[7] == "-" else text
        except ValueError:
            return text
    return None


def _filters(select: exp.Expression, sources: set[str] | None = None) -> dict[str, set]:
    """column = 'value' and column in ('a', 'b') filters that hold for every row of a SELECT (WHERE, JOIN ON, HAVING),
    on the columns of its FROM items named in `sources` (all of them if None): another side of a join is other rows."""
    conditions = [select.args.get("where"), select.args.get("having")]
    conditions += [j.args.get("on") for j in select.args.get("joins") or []]
    found: dict[str, set] = {}
    for condition in conditions:
        for term in _conjuncts(condition.this if isinstance(condition, exp.Where | exp.Having) else condition):
            if isinstance(term, exp.EQ):
                column, other = (term.left, term.right) if isinstance(term.left, exp.Column) else (term.right, term.left)
                values = [_value(other)] if isinstance(column, exp.Column) else []
            elif isinstance(term, exp.In) and isinstance(term.this, exp.Column):
                column, values = term.this, [_value(v) for v in term.expressions]
            else:
                continue
            values = [v for v in values if v is not None]
            if values and isinstance(column, exp.Column) and (sources is None or column.table.lower() in sources):
                found.setdefault(column.name.lower(), set()).update(values)
    return found


def _reads_a_table(select: exp.Expression, root: exp.Expression, schema: dict) -> bool:
    """Whether a SELECT's rows come from a warehouse table, directly or through CTEs and subqueries."""
    ctes = {c.alias_or_name.lower(): c.this for c in root.find_all(exp.CTE)}
    seen: set[str] = set()
    pending = [select]
    while pending:
        node = pending.pop()
        for table in node.find_all(exp.Table):
            name = table.name.lower()
            if not isinstance(table.this, exp.Identifier):
                continue
            if name in ctes and name not in seen:
                seen.add(name)
                pending.append(ctes[name])
            elif name in schema:
                return True
    return False


def _trace(node: Node, root: exp.Expression, schema: dict) -> ColumnTrace:
    trace = ColumnTrace(data=True)
    unchanged, leaves = True, []
    for step in node.walk():
        if isinstance(step.source, exp.Select | exp.Union):
            sources = {d.name.partition(".")[0].lower() for d in step.downstream if "." in d.name} or None
            for column, values in _filters(step.source, sources).items():
                trace.filters.setdefault(column, set()).update(values)
            unchanged = unchanged and _stored_column(step.expression)
            trace.aggregate = trace.aggregate or _aggregate(step.expression)
            invented = _invented(step.expression)
            if invented:
                trace.data, trace.why = False, f"it mixes the data with the number {invented}"
            elif trace.data and _independent(step.expression):
                trace.data, trace.why = False, ("it comes out the same whatever the data holds "
                                                f"({step.expression.sql(dialect='duckdb')[:60]})")
        if step.downstream:
            continue
        source = step.source
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier) and source.name.lower() in schema:
            trace.tables.add(source.name.lower())
            trace.reads.add(_place(source))
            leaves.append(step.name.rpartition(".")[2].lower())
        elif (isinstance(source, exp.Select) and step.expression.find(exp.Count)
              and _reads_a_table(source, root, schema)):
            trace.tables |= {t.name.lower() for t in source.find_all(exp.Table) if t.name.lower() in schema}
            trace.reads |= {_place(t) for t in source.find_all(exp.Table) if t.name.lower() in schema}
            unchanged = False
        else:
            trace.data, trace.why = False, "it comes from no table (a constant, VALUES, range() or a table function)"
    if trace.data and unchanged and len(leaves) == 1:
        trace.stored = leaves[0]
    return trace


def trace_columns(sql: str, schema: dict[str, dict[str, str]], count: int,
                  seconds: float = TRACE_SECONDS) -> list[ColumnTrace]:
    """Trace each of a query's `count` result columns to the tables it is computed from, in the sandbox's process
    and at most `seconds`."""
    try:
        return bounded(_trace_here, (sql, schema, count), seconds)
    except Overran:
        why = f"its columns could not be traced to the data within {seconds:g} s: write a simpler query"
        return [ColumnTrace(data=False, why=why) for _ in range(count)]


def _trace_here(sql: str, schema: dict[str, dict[str, str]], count: int) -> list[ColumnTrace]:
    started()
    try:
        tree = qualify(sqlglot.parse_one(sql, read="duckdb"), schema=schema, dialect="duckdb",
                       validate_qualify_columns=False, quote_identifiers=False)
        first = tree
        while isinstance(first, exp.SetOperation):
            first = first.left
        names = [s.alias_or_name for s in first.selects]
        if len(names) != count:
            raise ValueError("the columns could not be matched")
        return [_trace(lineage(name, tree, schema=schema, dialect="duckdb"), tree, schema) for name in names]
    except (sqlglot.errors.SqlglotError, ValueError, KeyError, AttributeError) as exc:
        why = f"its columns could not be traced to the data ({str(exc).splitlines()[0][:80]}): name what you select"
        return [ColumnTrace(data=False, why=why) for _ in range(count)]


def query_cells(name: str, sql: str, result: QueryResult, catalog: Catalog) -> tuple[list[Cell], list[ColumnTrace]]:
    """Every cell of an evidence query's result, with its subject and whether the data produced it."""
    traces = trace_columns(sql, result.schema, len(result.columns))
    lowered = [c.lower() for c in result.columns]
    # which result columns label each column's values, and which give their dates: the same for every row
    labelling = [[i for i, (c, t) in enumerate(zip(lowered, traces)) if _labels(c, t, trace)] for trace in traces]
    dating = [[i for i, t in enumerate(traces) if _dates(t, trace)] for trace in traces]
    cells = []
    for index, row in enumerate(result.rows, start=1):
        for position, (column, value, trace) in enumerate(zip(result.columns, row, traces)):
            labels = {lowered[i]: row[i] for i in labelling[position]}
            dates = frozenset(d for i in dating[position] if (d := as_date(row[i])))
            cells.append(Cell(value=value, source=name, column=column, row=index, query=sql, data=trace.data,
                              subject=_subject(trace, labels, dates, catalog),
                              style=_style(trace, labels, column, catalog),
                              aggregate=trace.aggregate if trace.tables & METRIC_STORES else None))
    return cells, traces


def _labels(column: str, label: ColumnTrace, value: ColumnTrace) -> bool:
    """Whether a result column says what a value is about: a stored label column (metric, dimension, member) of the
    same rows the value is computed from, not a literal and not another FROM item's."""
    return column in LABELS and label.stored == column and bool(label.reads) and label.reads <= value.reads


def _dates(day: ColumnTrace, value: ColumnTrace) -> bool:
    """Whether a result column's date is the date of a value: read from the data of the same rows."""
    return day.data and bool(day.reads) and day.reads <= value.reads


def _subject(trace: ColumnTrace, row: dict, row_dates: frozenset[date], catalog: Catalog) -> Subject:
    filters = trace.filters
    stores = trace.tables & METRIC_STORES
    if row.get("metric"):
        metrics = frozenset({row["metric"]})
    elif filters.get("metric"):
        metrics = frozenset(str(m) for m in filters["metric"])
    elif stores:
        metrics = None  # rows of many metrics
    else:  # a model's rows: an aggregate is the value of the metrics measured that way
        measured = MEASURED_AS.get(trace.aggregate) if trace.aggregate else None
        metrics = frozenset(m for table in trace.tables for m in catalog.metrics_reading(table)
                            if measured is None or catalog.metrics.get(m) in measured)
    if row.get("dimension") == OVERALL:
        members = frozenset({OVERALL})
    elif row.get("member") is not None:
        members = frozenset({str(row["member"])})
    elif filters.get("member"):
        members = frozenset(str(m) for m in filters["member"])
    elif OVERALL in filters.get("dimension", set()):
        members = frozenset({OVERALL})
    elif stores:
        members = None  # rows of many slices
    else:  # rows of a model: filtered to some members (country = 'DE'), or the whole business
        picked = {str(v) for values in filters.values() for v in values if str(v) in catalog.members}
        members = frozenset(picked) if picked else frozenset({OVERALL})
    dates = row_dates or frozenset(v for values in filters.values() for v in values if isinstance(v, date))
    return Subject(metrics, members, dates)


def _style(trace: ColumnTrace, row: dict, column: str, catalog: Catalog) -> str:
    """A ratio metric's value reads as a percent."""
    metric = row.get("metric") or next(iter(trace.filters.get("metric", ())), None)
    if column.lower() in ("value", "observed", "expected") and catalog.metrics.get(metric) == "ratio":
        return "percent"
    return "number"
