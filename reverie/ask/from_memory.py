"""The memory path: retrieve what memory holds on a question, let the model answer in one short call, and keep
the answer only if every number in it is one memory holds about what the sentence names.

What the model may quote is what it was shown: the retrieved items (their titles' numbers, their evidence's
observed and expected values, about their metric, slice and days) and the facts computed for a question
reverie can read. An answer that does not ground says so and gives those facts and items instead.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date

import openai

from reverie.analyst.grounding import OVERALL, Cell, Subject, Vocabulary, dates_in, ground, numbers_in
from reverie.ask.answers import Answer, answer_question
from reverie.ask.questions import Question
from reverie.llm import LLM
from reverie.llm_calls import ledger_row
from reverie.memory.search import search_memory
from reverie.prompts import prompt
from reverie.queries import rows_as_dicts, sql_file
from reverie.snapshot import Snapshot

RETRIEVED = 5
ALL_ITEMS = 10_000
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
MAX_TOKENS = 120  # two or three sentences; a cap on a model that rambles
MEMORY_ID = re.compile(r"mem-[0-9a-f]{12}")


@dataclass
class MemoryAnswer:
    """The answer, whether the model's own text grounded, and the ledger rows of its call."""
    text: str
    cited: list[str]
    grounded: bool
    calls: list[dict] = field(default_factory=list)


def retrieve(snapshot: Snapshot, text: str, q: Question | None) -> list[dict]:
    """The active insights most relevant to the question: its metric's first."""
    found: list[dict] = []
    for metric in ([q.metric] if q and q.metric else []) + [None]:
        for item in search_memory(snapshot, text, metric=metric, limit=RETRIEVED):
            if item["id"] not in {f["id"] for f in found}:
                found.append(item)
    if not found:  # no word matched: the most severe items (on the question's metric, if it names one)
        every = search_memory(snapshot, "", metric=q.metric if q else None, limit=ALL_ITEMS)
        found = sorted(every, key=lambda i: (SEVERITY_ORDER.get(i["severity"], 3), -(i["score"] or 0), i["id"]))
    return found[:RETRIEVED]


def _subject(item: dict) -> Subject:
    member = OVERALL if item.get("dimension") in (None, "overall") else item["member"]
    day = item.get("period")
    return Subject(frozenset({item["metric"]}) if item.get("metric") else None, frozenset({member}),
                   frozenset({_date(day)}) if day else frozenset())


def _date(text) -> date:
    return date.fromisoformat(str(text)[:10])


def cells_of(items: list[dict], facts: Answer | None) -> list[Cell]:
    """What an answer may quote: the numbers in the items' titles and bodies (reverie wrote and grounded them), and
    the facts' numbers, each about its item's or fact's metric, slice and day."""
    cells = []
    for item in items:
        subject = _subject(item)
        for written, value, _, _, _ in numbers_in(f"{item['title']}\n{item.get('body') or ''}"):
            percent = written.endswith(("%", "pp"))
            cells.append(Cell(value=value / 100 if percent else value, source=item["id"], column="title",
                              subject=subject, style="percent" if percent else "number"))
        cells += _dates_named(item["title"], item["id"])
    for n in facts.numbers if facts else []:
        member = OVERALL if n["member"] in (None, "all") else n["member"]
        percent = n["style"] in ("percent", "points", "change")
        cells.append(Cell(value=n["value"], source="facts", column=n["from"], style="percent" if percent else "number",
                          subject=Subject(frozenset({n["metric"]}) if n["metric"] else None, frozenset({member}),
                                          frozenset({_date(n["day"])}) if n["day"] else frozenset())))
    return cells + (_dates_named(facts.text, "facts") if facts else [])


def _dates_named(text: str, source: str) -> list[Cell]:
    """The days a text reverie wrote names, as values an answer may name too (they hold no number)."""
    days, _ = dates_in(text)
    return [Cell(value=None, source=source, column="date", subject=Subject(None, None, frozenset({d}))) for d in days]


def _facts_text(items: list[dict], facts: Answer | None) -> str:
    lines = [f"[{i['id']}] {i['title']}" for i in items]
    if facts:
        lines.append(f"[facts] {facts.text}")
    return "\n".join(lines) or "(memory holds nothing on this)"


def _fallback(items: list[dict], facts: Answer | None, why: str) -> str:
    """What is said when the model's answer cannot be kept: the facts, else the items, never invented numbers."""
    lead = f"I could not ground an answer in memory's values ({why})"
    if facts:
        return f"{lead}; what memory holds: {facts.text}"
    listed = "\n".join(f"- {i['title']} [{i['id']}]" for i in items)
    return f"{lead}; these insights are about it:\n{listed}" if items else f"{lead}, and memory holds nothing on it."


def gather(snapshot: Snapshot, text: str, q: Question | None, latest_day) -> tuple[list[dict], Answer | None]:
    """What memory holds on a question: the items retrieved, and the facts for a question reverie can read."""
    items = retrieve(snapshot, text, q)
    if q is None:
        return items, None
    with snapshot.connect() as con:
        facts = answer_question(con, q, latest_day)
        # the facts answer it: the items they rest on (found or not by the search) and the two most relevant others
        rested_on = rows_as_dicts(con.execute(sql_file("ask/items_by_id.sql"), {"ids": facts.cited})) if facts else []
    if facts is None:
        return items, None
    return rested_on + [i for i in items if i["id"] not in facts.cited][:2], facts


def without_model(items: list[dict], facts: Answer | None, why: str) -> MemoryAnswer:
    """No model to phrase an answer: what memory holds on the question, said as such."""
    return MemoryAnswer(_fallback(items, facts, f"no model: {why}"), _cited(items, facts), False)


def answer_from_memory(llm: LLM, text: str, items: list[dict], facts: Answer | None, q: Question | None,
                       vocabulary: Vocabulary) -> MemoryAnswer:
    """One short model call over what memory holds on the question, grounded like an insight."""
    started = time.monotonic()
    try:
        response = llm.chat(
            max_tokens=MAX_TOKENS, temperature=0.0,
            messages=[{"role": "user", "content": prompt("ask_memory", facts=_facts_text(items, facts),
                                                         question=text)}])
    except openai.OpenAIError as exc:
        calls = [ledger_row(llm.model, None, time.monotonic() - started, f"error: {type(exc).__name__}")]
        why = f"the model did not answer: {type(exc).__name__}"
        return MemoryAnswer(_fallback(items, facts, why), _cited(items, facts), False, calls)
    calls = [ledger_row(llm.model, response.usage, time.monotonic() - started, "ok")]
    written = (response.choices[0].message.content or "").strip()
    shown = {i["id"] for i in items}
    cited = [m for m in dict.fromkeys(MEMORY_ID.findall(written)) if m in shown]
    problems = [f"{m} was not among the facts shown" for m in MEMORY_ID.findall(written) if m not in shown]
    if not written:
        problems.append("the model wrote nothing")
    about = {i["metric"] for i in items if i["id"] in cited and i.get("metric")} | ({q.metric} if q and q.metric else set())
    checked = ground("", written, {"memory": cells_of(items, facts)}, vocabulary, about)
    problems += checked.problems
    if about and not any(vocabulary.mentions(checked.body, metric) for metric in about):
        problems.append(f"it does not name what it is about ({', '.join(sorted(about))})")
    if not cited and not checked.numbers:
        problems.append("it cites no fact and quotes no value of memory")
    if problems:
        return MemoryAnswer(_fallback(items, facts, problems[0]), _cited(items, facts), False, calls)
    return MemoryAnswer(checked.body, cited or _cited(items, facts), True, calls)


def _cited(items: list[dict], facts: Answer | None) -> list[str]:
    """What a fallback rests on: the facts' items when there are facts, else the items it lists."""
    return facts.cited if facts else [i["id"] for i in items]
