"""Prepare: answers to the questions people are likely to ask next, written into memory while nobody asks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.ask.answers import answer_question
from reverie.ask.anticipate import expected_questions, read_asked
from reverie.ask.from_memory import answer_from_memory, gather
from reverie.ask.questions import load_lexicon, text_key
from reverie.commits import transaction
from reverie.config import LLMSettings
from reverie.llm import LLMUnavailable, open_llm
from reverie.llm_calls import record_calls, token_totals
from reverie.logs import run_logger
from reverie.memory.aliases import write_aliases
from reverie.memory.search import update_index
from reverie.memory.store import answer_fingerprint, close_items, insert_items
from reverie.queries import rows_as_dicts, sql_file
from reverie.snapshot import open_snapshot, snapshot_info, write_snapshot
from reverie.summaries import PrepareSummary
from reverie.warehouse import Warehouse

RECENT_DAYS = 14
RECENT_QUESTIONS = 50
MODEL_ANSWERS = 5  # questions reverie cannot read, answered by the model tonight: a bound on the night's cost


def _prepared_item(title: str, key: str, body: str, cited: list[str], day, source: str, numbers=(), **subject) -> dict:
    """A prepared answer as a memory item: the question as its title, the answer as its body, found by its key."""
    return {"kind": "prepared_answer", "title": title, "body": body, "period_start": day, "severity": "info",
            "related_ids": cited, "source": source, "answer_key": key, **subject,
            "evidence": {"question": key, "numbers": list(numbers), "cited": cited}}


def _model_answers(snapshot, texts: list[str], lexicon, latest_day, settings: LLMSettings, log_dir: str,
                   calls: list[dict]) -> list[dict]:
    """Questions asked lately that reverie cannot read, answered tonight from memory by the model as `ask` would,
    kept only if grounded; the model's calls go to `calls`."""
    items = []
    try:
        with open_llm(settings, Path(log_dir)) as llm:
            for text in texts:
                found, _ = gather(snapshot, text, None, latest_day)
                answered = answer_from_memory(llm, text, found, None, None, lexicon.names())
                calls += answered.calls
                if answered.grounded:
                    items.append(_prepared_item(text, text_key(text), answered.text, answered.cited, latest_day,
                                                llm.model))
    except LLMUnavailable as exc:
        run_logger().warning("prepare: no model for the questions reverie cannot read: %s", exc)
    return items


# NO_CACHE: it writes memory and the snapshot.
@task(name="prepare-answers", cache_policy=NO_CACHE)
def prepare_answers(warehouse: Warehouse, cycle_id: str, flow_run_id: str | None, settings: LLMSettings,
                    log_dir: str, aliases: dict[str, tuple[str, ...]] | None = None) -> PrepareSummary:
    """Answer tonight the questions expected tomorrow — the ones asked lately on the new day, each metric's level,
    change and record, the follow-ups to tonight's biggest changes — and replace last night's answers. Questions
    asked lately that reverie cannot read are answered by the model from memory (not with `analysts = 0`)."""
    logger = run_logger()
    with warehouse.connect() as con, transaction(con, "prepare"):
        write_aliases(con, aliases or {})
    write_snapshot(warehouse, cycle_id)  # what the answers are computed from: memory as consolidated tonight
    snapshot = open_snapshot(warehouse)
    now = warehouse.now()
    with warehouse.connect() as con:
        recent = [r["question"] for r in rows_as_dicts(con.execute(sql_file("ask/recent_questions.sql"), {
            "since": now - timedelta(days=RECENT_DAYS), "limit": RECENT_QUESTIONS}))]
    prepared, calls = [], []
    with snapshot.connect() as con:
        latest_day = snapshot_info(con)["latest_day"]
        lexicon = load_lexicon(con, latest_day)
        asked, unread = read_asked(lexicon, recent)
        from_asks = len(asked)
        for question in expected_questions(con, lexicon, cycle_id, asked) if latest_day else []:
            answer = answer_question(con, question, latest_day)
            if answer is not None:
                prepared.append(_prepared_item(
                    question.words(), question.key(), answer.text, answer.cited, question.day or latest_day,
                    "prepared", answer.numbers, metric=question.metric, dimension=question.dimension,
                    member=question.member))
    unread = unread[:MODEL_ANSWERS]
    if latest_day is not None and unread and not settings.off:
        prepared += _model_answers(snapshot, unread, lexicon, latest_day, settings, log_dir, calls)
        from_asks += len(unread)
    with warehouse.connect() as con, transaction(con, "prepare"):
        old = [r[0] for r in con.execute(sql_file("ask/active_prepared.sql")).fetchall()]
        close_items(con, old, "superseded", "supersede", "prepared again tonight", cycle_id, now)
        insert_items(con, [(item, answer_fingerprint(item["answer_key"])) for item in prepared], cycle_id,
                     flow_run_id, now)
        record_calls(con, cycle_id, "prepare", calls, now)
    update_index(warehouse)
    write_snapshot(warehouse, cycle_id)  # tonight's answers, for the questions of tomorrow
    logger.info("prepare: %d answer(s) prepared, %d for questions asked lately", len(prepared), from_asks)
    prompt_tokens, completion_tokens = token_totals(calls)
    return {"prepared": len(prepared), "from_asks": from_asks, "superseded": len(old), "calls": len(calls),
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
