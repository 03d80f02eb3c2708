"""Row checks by great-expectations: suites built from declared checks, run by its SQL engine in the warehouse.

great-expectations is imported only inside these functions: `import great_expectations` costs ~5 s."""

from __future__ import annotations

import logging
from collections import defaultdict

import duckdb

from reverie.queries import literal, quoted, render
from reverie.suites import Check, QualityError
from reverie.tasks.quality.results import Outcome
from reverie.warehouse import cursor

ROW_CHECKS = {  # reverie's names for the great-expectations expectations people use most
    "not_null": "ExpectColumnValuesToNotBeNull",
    "unique": "ExpectColumnValuesToBeUnique",
    "in_set": "ExpectColumnValuesToBeInSet",
    "between": "ExpectColumnValuesToBeBetween",
}
SAMPLE_CHARS = 200  # of a sampled value kept with a result


def preload() -> None:
    """Import great-expectations ahead of the gate (~5 s), e.g. while Prefect's API starts."""
    import great_expectations  # noqa: F401


def expectation_kwargs(check: Check) -> dict:
    """The great-expectations arguments of a row check."""
    kwargs = dict(check.kwargs)
    if check.column:
        kwargs["column"] = check.column
    if check.check == "in_set":
        kwargs["value_set"] = check.values
    if check.check == "between":
        kwargs.update(min_value=check.min, max_value=check.max)
    if check.mostly < 1:
        kwargs["mostly"] = check.mostly
    return kwargs


def shortened(value: str, limit: int = SAMPLE_CHARS) -> str:
    """A sampled value as results, memory and the brief show it: a 2 MB string is its first characters and its size."""
    return value if len(value) <= limit else f"{value[:limit]}… ({len(value):,} characters)"


def _examples(sample: list) -> str:
    shown = ", ".join(repr(v) for v in sample[:3])
    return f" (e.g. {shown})" if shown else ""


def describe(check: Check, unexpected: int, total: int, sample: list) -> str:
    """A row check's failure in words a person understands."""
    share = f"{unexpected / total:.1%} of rows ({unexpected:,} of {total:,})" if total else f"{unexpected:,} rows"
    column = check.column
    if check.check == "not_null":
        return f"{share} have no {column}"
    if check.check == "unique":
        return f"{share} repeat a {column} value{_examples(sample)}"
    if check.check == "in_set":
        allowed = ", ".join(str(v) for v in check.values)
        return f"{share} have a {column} outside {allowed}{_examples(sample)}"
    if check.check == "between":
        low = "" if check.min is None else f"{check.min:g}"
        high = "" if check.max is None else f"{check.max:g}"
        return f"{share} have {column} outside [{low}, {high}]{_examples(sample)}"
    return f"{check.expectation}{f' on {column}' if column else ''}: {share} unexpected{_examples(sample)}"


def _read_results_before_closing() -> None:
    """great-expectations' SQL engine returns a query's cursor after closing its connection, which duckdb-engine
    then reads as empty: buffer the rows while the connection is open (measured on great-expectations 1.24)."""
    from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine as Engine

    if getattr(Engine.execute_query, "buffered", False):
        return

    def execute_query(self, query):
        with self.get_connection() as connection:
            return self._execute_query_with_recovery(connection, query).freeze()()

    execute_query.buffered = True
    Engine.execute_query = execute_query


def _suite(gx, checks: list[Check], where: str, screen: bool):
    """The checks as a great-expectations suite. A screen is strict (no `mostly`) and checks `unique` by counting
    distinct values, one aggregate the database computes with the others in a pass; what it flags is then
    checked as declared, for the rows and batches at fault."""
    suite = gx.ExpectationSuite(name="reverie")
    for i, check in enumerate(checks):
        name = ROW_CHECKS.get(check.check, check.expectation or "")
        kwargs = expectation_kwargs(check)
        if screen:
            kwargs.pop("mostly", None)
            if check.check == "unique":
                name, kwargs = "ExpectColumnProportionOfUniqueValuesToBeBetween", {"column": check.column, "min_value": 1}
        expectation = getattr(gx.expectations, name, None)
        if expectation is None:
            raise QualityError(f"{where}[{i}]: expectation '{check.expectation}' is not a great-expectations "
                               "1.x expectation class")
        try:
            suite.add_expectation(expectation(**kwargs, meta={"check": i}))
        except Exception as exc:  # GE reports bad arguments as several exception types
            raise QualityError(f"{where}[{i}]: {exc}") from exc
    return suite


def _validator(con: duckdb.DuckDBPyConnection, query: str):
    """A function validating a suite on the rows of `query`, run by great-expectations in the warehouse itself
    (imported lazily: ~5 s). It reads through a cursor of `con`: DuckDB lets a process open a file once."""
    import duckdb_engine
    import great_expectations as gx

    _read_results_before_closing()
    # GE pins some of its loggers to INFO; a clean cycle log wants only its warnings
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    datasource = context.data_sources.add_sql(
        "reverie", connection_string="duckdb:///:memory:",
        kwargs={"creator": lambda: duckdb_engine.ConnectionWrapper(cursor(con))})
    batch_definition = datasource.add_query_asset("batch", query=query).add_batch_definition_whole_table("batch")

    def validate(suite, result_format: dict):
        return batch_definition.get_batch().validate(suite, result_format=result_format)

    return gx, validate, datasource


def row_outcomes(con: duckdb.DuckDBPyConnection, table: str, local_time: str, batches: list[dict], checks: list[Check],
                 where: str) -> list[Outcome]:
    """The row checks, run by great-expectations in the warehouse over all the new batches at once: a strict
    screen in one pass, then the checks it flagged as declared, with their rows' batches and values.
    `batches` carry their file, number, rows and event-time range; `local_time` is the table's time as they measure it."""
    columns = sorted({c.column for c in checks if c.column} | {k for c in checks for k in
                                                               (c.kwargs.get("column_list") or [])})
    firsts, lasts = [b["first_event"] for b in batches if b["first_event"]], [b["last_event"] for b in batches
                                                                           if b["last_event"]]
    query = render("quality/batch_rows.sql", identifiers={"raw_table": table}, expressions={
        "columns": ", ".join(quoted(c) for c in columns) if columns else "*", "local_time": local_time,
        "batches": ", ".join(str(int(b["batch_id"])) for b in batches),
        "first_event": f"timestamp {literal(str(min(firsts)))}" if firsts else "null",
        "last_event": f"timestamp {literal(str(max(lasts)))}" if lasts else "null"})
    gx, validate, datasource = _validator(con, query)
    try:
        screened = validate(_suite(gx, checks, where, screen=True), {"result_format": "BOOLEAN_ONLY"})
        flagged = [checks[i] for i in sorted(int(r.expectation_config.meta["check"]) for r in screened.results
                                             if not r.success)]
        results = validate(_suite(gx, flagged, where, screen=False), {
            "result_format": "COMPLETE", "unexpected_index_column_names": ["_batch"]}).results if flagged else []
    finally:
        datasource.get_engine().dispose()
    outcomes = [Outcome(b["file"], check, True, b["rows"], 0, [], "") for check in checks
                if not any(check is f for f in flagged) for b in batches]
    for r in results:
        check = flagged[int(r.expectation_config.meta["check"])]
        stats = r.result or {}
        per_batch: dict[int, list] = defaultdict(list)
        for row in stats.get("unexpected_index_list") or []:
            per_batch[row["_batch"]].append(row.get(check.column) if check.column else None)
        for b in batches:
            if "unexpected_index_list" in stats or r.success:
                unexpected = per_batch.get(b["batch_id"], [])
                success = r.success or not unexpected
            else:  # a table-level expectation: its verdict is the rows' together
                unexpected, success = [], bool(r.success)
            sample = list(dict.fromkeys(shortened(str(v)) for v in unexpected))[:5]
            outcomes.append(Outcome(b["file"], check, success, b["rows"], len(unexpected), sample,
                                    "" if success else describe(check, len(unexpected), b["rows"], sample)))
    return outcomes
