"""What sleep-time compute cost and what it saved: the nights' tokens and seconds against the asks', by path.

The saving of an ask answered (grounded) from preparation, the snapshot or memory is what the cold path costs on
average when it answers (measured by the cold asks of the same window that answered, `reverie ask --no-memory`)
minus what it cost; with no cold ask that answered, no saving is claimed: a cold path that answers nothing has
no cost to save against. Declines save nothing either.
"""

from __future__ import annotations

from datetime import timedelta

from reverie.ask.recorded import move_pending_asks
from reverie.queries import rows_as_dicts, sql_file
from reverie.warehouse import Warehouse


def usage_stats(warehouse: Warehouse, days: int) -> dict:
    """Sleep time per cycle, query time per path, and the amortisation over the last `days` days."""
    since = warehouse.now() - timedelta(days=days)
    with warehouse.connect() as con:
        move_pending_asks(con, warehouse.folder)
        cycles = rows_as_dicts(con.execute(sql_file("stats/cycles.sql"), {"since": since}))
        paths = rows_as_dicts(con.execute(sql_file("stats/asks_by_path.sql"), {"since": since}))
    night_tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for c in cycles)
    night_seconds = sum(c["seconds"] or 0 for c in cycles)
    by_path = {p["path"]: p for p in paths}
    cold = by_path.get("cold")
    warm = [p for p in paths if p["path"] not in ("cold", "declined")]
    amortisation = {"night_tokens": night_tokens, "night_seconds": round(night_seconds, 2),
                    "warm_asks": sum(p["grounded"] for p in warm), "cold_asks": cold["asks"] if cold else 0,
                    "cold_answered": cold["grounded"] if cold else 0,
                    "saved_tokens": None, "saved_seconds": None, "net_tokens": None}
    if cold and cold["grounded"]:
        amortisation["saved_tokens"] = round(sum(p["grounded"] * cold["answered_mean_tokens"] - p["answered_tokens"]
                                                 for p in warm))
        amortisation["saved_seconds"] = round(sum(p["grounded"] * cold["answered_mean_seconds"] - p["answered_seconds"]
                                                  for p in warm), 2)
        amortisation["net_tokens"] = amortisation["saved_tokens"] - night_tokens
    return {"days": days, "since": since.isoformat(timespec="seconds"), "cycles": cycles, "asks": paths,
            "amortisation": amortisation}
