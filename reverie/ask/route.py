"""`reverie ask`: a question answered by the cheapest path that holds — a prepared answer, one computed from the
snapshot, memory, or the warehouse cold — or declined at once when it has a part reverie cannot read or has no
data for; without Prefect, without waiting for a cycle that holds the warehouse, and recorded."""

from __future__ import annotations

import json
import time
import uuid

from reverie.ask.questions import load_lexicon, parse_question, text_key
from reverie.ask.recorded import record_ask
from reverie.config import Settings
from reverie.llm_calls import token_totals
from reverie.queries import render
from reverie.snapshot import NoSnapshot, open_snapshot, running_cycle, snapshot_info


class AskError(ValueError):
    """A question that cannot be asked now; the message says why and what to do."""


def _prepared(con, key: str) -> dict | None:
    row = con.execute(render("ask/prepared_answer.sql", literals={"key": key})).fetchone()
    if row is None:
        return None
    memory_id, body, related, evidence = row
    return {"answer": body, "cited": [memory_id, *(related or [])], "grounded": True,
            "numbers": json.loads(evidence).get("numbers", []) if evidence else []}


def _cold(settings: Settings, question: str, latest_day) -> dict:
    """The warehouse itself, with SQL and no memory; it needs the warehouse, so a running cycle is said, not waited for."""
    from reverie.ask.cold import answer_cold  # the analyst's SQL tools: only this path needs them
    from reverie.llm import LLMUnavailable, open_llm

    holder = running_cycle(settings.warehouse)
    if holder is not None:
        raise AskError(f"a cycle ({holder['cycle_id']}) has held the warehouse since {holder['started_at']}: the cold "
                       "path reads the warehouse itself, so ask again when it has finished, or ask without "
                       "--no-memory (memory answers from the last finished cycle)")
    try:
        with open_llm(settings.llm, settings.warehouse.folder / "logs") as llm:
            text, grounded, run = answer_cold(llm, settings.warehouse, question, latest_day, settings.llm)
    except LLMUnavailable as exc:
        raise AskError(f"the cold path needs a model: {exc}") from None
    return {"answer": text, "cited": [], "grounded": grounded, "calls": run.calls}


def _from_memory(settings: Settings, snapshot, question: str, parsed, lexicon, latest_day) -> dict:
    """Memory and one short model call; with no model to call, what memory holds, said as such."""
    from reverie.ask.from_memory import answer_from_memory, gather, without_model  # the model's client: only here
    from reverie.llm import LLMUnavailable, open_llm

    items, facts = gather(snapshot, question, parsed, latest_day)
    try:
        with open_llm(settings.llm, settings.warehouse.folder / "logs") as llm:
            answered = answer_from_memory(llm, question, items, facts, parsed, lexicon.names())
    except LLMUnavailable as exc:
        answered = without_model(items, facts, str(exc))
    return {"answer": answered.text, "cited": answered.cited, "grounded": answered.grounded, "calls": answered.calls}


def _at_once(con, parsed, key: str, latest_day) -> tuple[str, dict | None]:
    """What answers with no model call: a decline, a prepared answer, or one computed from the snapshot for a
    question read in full (no value for it is said, not guessed); else ("memory", None)."""
    from reverie.ask.answers import answer_question

    if parsed is not None and parsed.intent == "decline":
        return "declined", {"answer": parsed.reason, "cited": [], "grounded": False}
    if found := _prepared(con, key):
        return "prepared", found
    if parsed is None or latest_day is None:
        return "memory", None
    answer = answer_question(con, parsed, latest_day)
    if answer is None:
        when = parsed.period.words() if parsed.period else (parsed.day or latest_day).isoformat()
        return "declined", {"answer": f"The snapshot holds no value of {parsed.metric or 'anything'} for {when}.",
                            "cited": [], "grounded": False}
    return "computed", {"answer": answer.text, "cited": answer.cited, "grounded": True, "numbers": answer.numbers}


def ask(settings: Settings, question: str, use_memory: bool = True, use_prepared: bool = True) -> dict:
    """Answer one question and record it; the ask JSON of the CLI contract, with what answered it."""
    started = time.monotonic()
    question = " ".join(question.split())
    if not question:
        raise AskError("the question is empty: reverie ask \"what drove revenue yesterday?\"")
    asked_at = settings.warehouse.now()
    try:
        snapshot = open_snapshot(settings.warehouse)
    except NoSnapshot as exc:
        raise AskError(str(exc)) from None
    with snapshot.connect() as con:
        info = snapshot_info(con)
        lexicon = load_lexicon(con, info["latest_day"], asked_at.date())
        parsed = parse_question(question, lexicon)
        key = parsed.key() if parsed else text_key(question)  # a question it cannot read may be prepared too
        path, result = _at_once(con, parsed, key, info["latest_day"]) if use_memory and use_prepared else (
            "memory" if use_memory else "cold", None)
        if path == "memory" and parsed is not None and parsed.intent == "decline":  # --no-prepared declines too
            path, result = _at_once(con, parsed, key, info["latest_day"])
    if path == "memory":
        result = _from_memory(settings, snapshot, question, parsed, lexicon, info["latest_day"])
    elif path == "cold":
        result = _cold(settings, question, info["latest_day"])
    if parsed is not None and parsed.note and path in ("prepared", "computed"):
        result["answer"] = f"{parsed.note} {result['answer']}"
    calls = result.get("calls", [])
    prompt_tokens, completion_tokens = token_totals(calls)
    payload = {
        "answer": result["answer"], "path": path, "cited": list(dict.fromkeys(result["cited"])),
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "seconds": round(time.monotonic() - started, 3),
        "grounded": result["grounded"], "question": question, "ask_id": f"ask-{uuid.uuid4().hex[:12]}",
        "snapshot": {"cycle_id": info["cycle_id"], "written_at": str(info["written_at"])},
        "understood": parsed.understood() if parsed else None,
        "numbers": result.get("numbers", []),  # where each number of a prepared or computed answer comes from
        "data_through": info["latest_day"].isoformat() if info["latest_day"] else None,
    }
    payload["recorded"] = record_ask(settings.warehouse, {
        "ask_id": payload["ask_id"], "asked_at": asked_at.isoformat(), "question": question, "path": path,
        "answer": payload["answer"], "cited": payload["cited"], "prompt_tokens": payload["prompt_tokens"],
        "completion_tokens": payload["completion_tokens"], "seconds": payload["seconds"],
        "snapshot_cycle_id": info["cycle_id"], "grounded": payload["grounded"], "calls": calls})
    return payload
