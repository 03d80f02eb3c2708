"""Anticipation: the questions likely next, read from what people asked lately and what changed tonight.

The same questions on the new day (a question asked without a day is about the latest one), what happened on
each day of the last week, each metric's level, change, record and pace, the questions people ask first (last
week, this week against last, this month so far against last month's same days, which member of each dimension
leads, anything wrong), and the follow-ups to this night's biggest changes: what drove it, since when, how big
against usual — about the whole business and the slice that moved, on the latest day and on its own. The
questions people ask first are written in words and read like an asked question, so their keys are the same.
"""

from __future__ import annotations

from datetime import timedelta

from reverie.ask.questions import Lexicon, Question, parse_question
from reverie.queries import rows_as_dicts, sql_file

NIGHT_CHANGES = 5
WEEK = 7  # "what happened on <day>" is prepared for each of the last week's days
FOLLOW_UPS = ("change", "driver", "since", "usual")


def read_asked(lexicon: Lexicon, recent: list[str]) -> tuple[list[Question], list[str]]:
    """The questions people asked lately that reverie can read (each once, about the new day if they named none),
    and the ones it cannot."""
    parsed = [(text, parse_question(text, lexicon)) for text in recent]
    read = (q for _, q in parsed if q is not None and q.intent != "decline")  # a decline is said at once, not prepared
    return _once(read), [text for text, q in parsed if q is None]


def _asked_first(lexicon: Lexicon) -> list[Question]:
    """The questions people ask first about each metric, read from their words."""
    texts = []
    for metric in lexicon.metrics:
        words = metric.replace("_", " ")
        texts += [f"{words} last week", f"{words} this week compared with last week",
                  f"{words} this month so far compared with last month", f"is anything wrong with {words}"]
        texts += [f"which {dimension} had the most {words}"
                  for dimension in lexicon.catalogue.get(metric, {}).get("dimensions") or ()]
    read = (parse_question(text, lexicon) for text in texts)
    return [q for q in read if q is not None and q.intent != "decline"]


def _once(questions, latest=None) -> list[Question]:
    return list(dict.fromkeys(q.on(None) if latest is not None and q.day == latest else q for q in questions))


def expected_questions(con, lexicon: Lexicon, cycle_id: str, asked: list[Question]) -> list[Question]:
    """The questions to prepare answers for tonight, each once, the ones people asked first."""
    every_metric = [Question(intent, metric) for metric in lexicon.metrics for intent in ("level", "change", "record")]
    every_metric += [Question("pace", metric) for metric in lexicon.metrics]
    follow_ups = []
    for c in rows_as_dicts(con.execute(sql_file("ask/night_changes.sql"), {"cycle_id": cycle_id, "limit": NIGHT_CHANGES})):
        slices = {("overall", "all"), (c["dimension"], c["member"])}
        for (dimension, member) in sorted(slices):
            for day in (None, c["period_start"]):
                follow_ups += [Question(intent, c["metric"], dimension, member, day) for intent in FOLLOW_UPS]
                follow_ups.append(Question("level", c["metric"], dimension, member, day))
        follow_ups.append(Question("day", day=c["period_start"]))
    # the latest day named by its date is the same question as one about the latest day
    latest = lexicon.latest_day
    recent_days = [Question("day", day=latest - timedelta(days=back)) for back in range(WEEK)] if latest else []
    return _once([*asked, *recent_days, *every_metric, *_asked_first(lexicon), *follow_ups], latest)
