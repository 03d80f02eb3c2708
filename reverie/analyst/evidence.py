"""Evidence queries traced to the data: which result columns the warehouse's tables produce, and what each value is about.

A number counts as evidence only if it comes out of the data. Each result column of an evidence query
is traced (sqlglot's lineage, through CTEs, subqueries and every branch of a UNION) to the table
columns it is computed from; a column that comes from no table — a literal, VALUES, range(), a table
function — or mixes the data with a number of its own (`value * 0 + 37.5`) is a constant, and grounds
nothing. Each value is also given its subject: the metric, slice and period of its row, read from the
row itself (`metric`, `dimension`, `member` and date columns) or from the query's filters
(`where metric = 'revenue' and member = 'DE'`), or, for a query over a model's rows, the metrics built
on that model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import sqlglot
from sqlglot import exp
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify

from reverie.analyst.grounding import OVERALL, Cell, Subject, Vocabulary
from reverie.analyst.sandbox import Overran, QueryResult, as_date, bounded, sandbox_connection, started
from reverie.models import ModelError, referenced_tables
from reverie.warehouse import own_tables, sql_file

# reverie's tables whose rows each belong to one metric and one slice
METRIC_STORES = {"metric_values", "candidates", "memory", "agent_insights"}
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Pow)
# numbers that scale or shift a value without making one up: percent, thousands, per day/week/hour, 1 - share
SCALES = {1.0, 10.0, 100.0, 1e3, 1e6, 1e9, 7.0, 12.0, 24.0, 52.0, 60.0, 365.0, 3600.0, 86400.0}
SHIFTS = {0.0, 1.0}
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
    return catalog


@dataclass
class ColumnTrace:
    """One result column: whether the data produces it, why not, which tables it reads, what its filters say."""
    data: bool
    why: str = ""
    tables: set[str] = field(default_factory=set)
    filters: dict[str, set] = field(default_factory=dict)  # column name -> the values it is filtered to


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


def _filters(select: exp.Expression) -> dict[str, set]:
    """column = 'value' and column in ('a', 'b') filters that hold for every row of a SELECT (WHERE, JOIN ON, HAVING)."""
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
            if values and isinstance(column, exp.Column):
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
    for step in node.walk():
        if isinstance(step.source, exp.Select | exp.Union):
            for column, values in _filters(step.source).items():
                trace.filters.setdefault(column, set()).update(values)
            invented = _invented(step.expression)
            if invented:
                trace.data, trace.why = False, f"it mixes the data with the number {invented}"
        if step.downstream:
            continue
        source = step.source
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier) and source.name.lower() in schema:
            trace.tables.add(source.name.lower())
        elif (isinstance(source, exp.Select) and step.expression.find(exp.Count)
              and _reads_a_table(source, root, schema)):
            trace.tables |= {t.name.lower() for t in source.find_all(exp.Table) if t.name.lower() in schema}
        else:
            trace.data, trace.why = False, "it comes from no table (a constant, VALUES, range() or a table function)"
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
    cells = []
    for index, row in enumerate(result.rows, start=1):
        named = dict(zip(lowered, row))
        row_dates = frozenset(d for d in map(as_date, row) if d)
        for column, value, trace in zip(result.columns, row, traces):
            cells.append(Cell(value=value, source=name, column=column, row=index, query=sql, data=trace.data,
                              subject=_subject(trace, named, row_dates, catalog),
                              style=_style(trace, named, column, catalog)))
    return cells, traces


def _subject(trace: ColumnTrace, row: dict, row_dates: frozenset[date], catalog: Catalog) -> Subject:
    filters = trace.filters
    stores = trace.tables & METRIC_STORES
    if row.get("metric"):
        metrics = frozenset({row["metric"]})
    elif filters.get("metric"):
        metrics = frozenset(str(m) for m in filters["metric"])
    elif stores:
        metrics = None  # rows of many metrics
    else:
        metrics = frozenset(m for table in trace.tables for m in catalog.metrics_reading(table))
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
