"""The ledger of LLM calls (llm_calls): one row per completion, for the analyst, prepare and ask alike."""

from __future__ import annotations

from datetime import datetime

import duckdb

from reverie.queries import sql_file


def ledger_row(model: str, usage, seconds: float, outcome: str) -> dict:
    """One completion's model, tokens (None when the endpoint did not say), latency and outcome."""
    return {"model": model, "prompt_tokens": getattr(usage, "prompt_tokens", None),
            "completion_tokens": getattr(usage, "completion_tokens", None),
            "latency_seconds": round(seconds, 3), "outcome": outcome}


def token_totals(calls: list[dict]) -> tuple[int, int]:
    """Prompt and completion tokens over ledger rows (a row whose endpoint did not say counts 0)."""
    return (sum(c["prompt_tokens"] or 0 for c in calls), sum(c["completion_tokens"] or 0 for c in calls))


def record_calls(con: duckdb.DuckDBPyConnection, cycle_id: str | None, purpose: str, calls: list[dict],
                 called_at: datetime) -> None:
    """Append ledger rows to llm_calls, inside the caller's transaction."""
    statement = sql_file("analyst/insert_llm_call.sql")
    for call in calls:
        con.execute(statement, {"cycle_id": cycle_id, "purpose": purpose, **call, "called_at": called_at})
