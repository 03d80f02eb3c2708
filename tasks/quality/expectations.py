"""Row checks by great-expectations: suites built from declared checks, run on pandas frames read from DuckDB.

great-expectations is imported only inside these functions: `import great_expectations` costs ~5 s."""

from __future__ import annotations

import logging
from collections import defaultdict

import duckdb

from reverie.warehouse import quoted, render
from tasks.quality.declarations import Check, QualityError
from tasks.quality.results import Outcome

ROW_CHECKS = {  # reverie's names for the great-expectations expectations people use most
    "not_null": "ExpectColumnValuesToNotBeNull",
    "unique": "ExpectColumnValuesToBeUnique",
    "in_set": "ExpectColumnValuesToBeInSet",
    "between": "ExpectColumnValuesToBeBetween",
}
CHUNK_ROWS = 1_000_000  # rows validated together: bounded memory, and few great-expectations runs
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


def _validator(checks: list[Check], where: str):
    """An ephemeral great-expectations context, one pandas asset and the suite (imported lazily: ~5 s)."""
    import great_expectations as gx

    # GE pins some of its loggers to INFO; a clean cycle log wants only its warnings
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch_definition = context.data_sources.add_pandas("reverie").add_dataframe_asset("batch") \
        .add_batch_definition_whole_dataframe("batch")
    suite = gx.ExpectationSuite(name="reverie")
    for i, check in enumerate(checks):
        expectation = getattr(gx.expectations, ROW_CHECKS.get(check.check, check.expectation or ""), None)
        if expectation is None:
            raise QualityError(f"{where}[{i}]: expectation '{check.expectation}' is not a great-expectations "
                               "1.x expectation class")
        try:
            suite.add_expectation(expectation(**expectation_kwargs(check), meta={"check": i}))
        except Exception as exc:  # GE reports bad arguments as several exception types
            raise QualityError(f"{where}[{i}]: {exc}") from exc
    # unexpected rows come back with their batch, so many small batches can be validated in one frame
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": ["_batch"]}

    def validate(frame):
        return batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format=result_format)

    return validate


def _chunks(batches: list[dict]) -> list[list[dict]]:
    """Batches grouped into frames of at most CHUNK_ROWS rows (a bigger batch is a frame of its own)."""
    chunks, current, size = [], [], 0
    for batch in batches:
        if current and size + batch["rows"] > CHUNK_ROWS:
            chunks.append(current)
            current, size = [], 0
        current.append(batch)
        size += batch["rows"]
    return chunks + ([current] if current else [])


def row_outcomes(con: duckdb.DuckDBPyConnection, table: str, batches: list[dict], checks: list[Check],
                 where: str) -> list[Outcome]:
    """The row checks, run by great-expectations on pandas frames read from DuckDB, one frame per chunk."""
    validate = _validator(checks, where)
    columns = sorted({c.column for c in checks if c.column} | {k for c in checks for k in
                                                               (c.kwargs.get("column_list") or [])})
    sql = render("quality/batch_rows.sql", identifiers={"raw_table": table},
                 expressions={"columns": ", ".join(quoted(c) for c in columns) if columns else "*"})
    outcomes = []
    for chunk in _chunks(batches):
        names = [b["file"] for b in chunk]
        frame = con.execute(sql, {"batches": names}).to_arrow_table().to_pandas()  # through Arrow: 3x faster than .df()
        result = validate(frame)
        for r in result.results:
            check = checks[int(r.expectation_config.meta["check"])]
            stats = r.result or {}
            per_batch: dict[str, list] = defaultdict(list)
            for row in stats.get("unexpected_index_list") or []:
                per_batch[row["_batch"]].append(row.get(check.column) if check.column else None)
            for b in chunk:
                if "unexpected_index_list" in stats or r.success:
                    unexpected = per_batch.get(b["file"], [])
                    success = r.success or not unexpected
                else:  # a table-level expectation: its verdict is the frame's
                    unexpected, success = [], bool(r.success)
                sample = list(dict.fromkeys(shortened(str(v)) for v in unexpected))[:5]
                outcomes.append(Outcome(b["file"], check, success, b["rows"], len(unexpected), sample,
                                        "" if success else describe(check, len(unexpected), b["rows"], sample)))
    return outcomes
