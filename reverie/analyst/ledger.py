"""The ledger of LLM calls (llm_calls): one row per completion, for reflect and ask alike."""

from __future__ import annotations

from datetime import datetime

import duckdb


def ledger_row(model: str, usage, seconds: float, outcome: str) -> dict:
    """One completion's model, tokens (None when the endpoint did not say), latency and outcome."""
    return {"model": model, "prompt_tokens": getattr(usage, "prompt_tokens", None),
            "completion_tokens": getattr(usage, "completion_tokens", None),
            "latency_seconds": round(seconds, 3), "outcome": outcome}


def record_calls(con: duckdb.DuckDBPyConnection, cycle_id: str | None, purpose: str, calls: list[dict],
                 called_at: datetime) -> None:
    """Append ledger rows to llm_calls, inside the caller's transaction."""
    for call in calls:
        con.execute("insert into llm_calls values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [cycle_id, purpose, call["model"], call["prompt_tokens"], call["completion_tokens"],
                     call["latency_seconds"], call["outcome"], called_at])
