"""Alerts people can trust, counted by a real HTTP receiver over repeated cycles of changing data: nothing twice, a
new value as an update, quiet hours held and then sent, noise silenced, a failing channel owed its alerts."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from reverie.config import AlertSettings
from reverie.flows.local_run import run_cycle, run_morning_brief
from reverie.generator import generate
from reverie.memory.store import fingerprint, give_feedback, insert_item
from reverie.tasks.deliver.alerts import alerts_for
from reverie.warehouse import Warehouse
from tests.helpers.logs import logged_at_debug, stored_logs
from tests.helpers.projects import project_delivering
from tests.helpers.receiver import TOKEN, Receiver
from tests.helpers.warehouse import everything_stored, query

WEBHOOK_ENV = "REVERIE_TEST_WEBHOOK_URL"
APPRISE_ENV = "REVERIE_TEST_APPRISE_URLS"
MEMORY_ID = re.compile(r"`(mem-[0-9a-f]{12})`")
BOTH = ('channels = ["brief_file", "webhook", "apprise"]\n{policy}'
        f'[deliver.webhook]\nurl_env = "{WEBHOOK_ENV}"\ntop_items = 50\n'
        f'[deliver.apprise]\nurls_env = "{APPRISE_ENV}"\ntop_items = 50\n')


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def apprise_log():
    """Everything Apprise and the HTTP libraries under it log, at DEBUG."""
    with logged_at_debug("apprise", "urllib3", "requests", "httpx", "httpcore") as messages:
        yield messages


def alerting(make_project, scripted_llm, receiver, monkeypatch, policy: str = "", days: int = 42):
    """A project whose cycles alert through the webhook channel and Apprise (json://), both to `receiver`."""
    monkeypatch.setenv(WEBHOOK_ENV, f"{receiver.url}/webhook")
    monkeypatch.setenv(APPRISE_ENV, f"json://127.0.0.1:{receiver.port}/hooks/{TOKEN}/apprise")
    settings = project_delivering(make_project, scripted_llm, BOTH.format(policy=policy))
    if days > 35:
        generate(settings.landing_dir, days - 35)
    return settings


def set_policy(settings, policy: str) -> None:
    config = settings.project_dir / "reverie.toml"
    text = config.read_text()
    head, rest = text.split('channels = ["brief_file", "webhook", "apprise"]\n', 1)
    rest = rest[rest.index("[deliver.webhook]"):]
    config.write_text(head + 'channels = ["brief_file", "webhook", "apprise"]\n' + policy + rest)


def messages(receiver, channel: str) -> list[dict]:
    return [m for m, path in zip(receiver.messages, receiver.paths) if path.endswith(f"/{channel}")]


def apprise_ids(message: dict) -> list[str]:
    return MEMORY_ID.findall(message["message"])


def late_copy(settings, name: str) -> None:
    """A late file for the newest day, as a backfill that lands after it: the day's events once more (new ids), so
    every count of the day grows by what it was."""
    newest = max((settings.landing_dir / "events").glob("date=*"))
    day = pq.read_table(newest / "part-0.parquet")
    ids = pc.binary_join_element_wise(day["event_id"], pa.scalar(f"-{name}"), "")
    pq.write_table(day.set_column(0, "event_id", ids), newest / f"{name}.parquet")


def cycle(settings) -> dict:
    result = run_cycle(settings.project_dir)
    assert result["status"] in ("completed", "degraded"), result
    return result


def test_alerts_over_cycles_of_changing_data_are_never_sent_twice_and_a_new_value_is_an_update(
        make_project, scripted_llm, receiver, monkeypatch, apprise_log):
    settings = alerting(make_project, scripted_llm, receiver, monkeypatch)

    first = cycle(settings)

    webhook, apprise = messages(receiver, "webhook"), messages(receiver, "apprise")
    assert len(webhook) == len(apprise) == 1 and first["stages"]["deliver"]["sent"] == 2
    sent = [item["id"] for item in webhook[0]["items"]]
    assert sent and apprise_ids(apprise[0]) == sent and not any(item["update"] for item in webhook[0]["items"])
    severities = query(settings, "select distinct severity from memory where list_contains(?, id)", [sent])
    assert {s for (s,) in severities} <= {"warning", "critical"}  # the default threshold: info does not notify
    info = query(settings, "select count(*) from memory where severity = 'info' and status = 'active' "
                           "and kind <> 'prepared_answer'")[0][0]
    assert info > 0  # ... though there were info items, in the brief
    brief = settings.briefs_dir / f"{first['cycle_id']}.html"
    assert str(brief) in webhook[0]["text"] and str(brief) in apprise[0]["message"]

    # the same data again, and then new days: nothing already sent is sent again
    cycle(settings)
    assert len(receiver.messages) == 2
    for _ in range(3):
        generate(settings.landing_dir, 1)
        cycle(settings)
    every = [item for m in messages(receiver, "webhook") for item in m["items"]]
    assert len({item["id"] for item in every}) == len(every)
    assert [apprise_ids(m) for m in messages(receiver, "apprise")] == [
        [item["id"] for item in m["items"]] for m in messages(receiver, "webhook")]
    rows = query(settings, "select count(*), count(distinct cycle_id) from deliveries where channel = 'webhook'")
    assert rows == [(len(messages(receiver, "webhook")),) * 2]

    # a late file doubles the newest day, then another makes it three times what it was: new values of the subjects
    # flagged on that day
    late_copy(settings, "late")
    spiked = cycle(settings)
    [spike] = [m for m in messages(receiver, "webhook") if m["cycle_id"] == spiked["cycle_id"]]
    new_subjects = {item["id"] for item in spike["items"]}
    assert new_subjects
    late_copy(settings, "later")
    again = cycle(settings)
    [update] = [m for m in messages(receiver, "webhook") if m["cycle_id"] == again["cycle_id"]]
    updates = [item for item in update["items"] if item["update"]]
    assert updates and update["title"].endswith(f"{len(updates)} updated")
    for item in updates:
        superseded = query(settings, "select supersedes from memory where id = ?", [item["id"]])[0][0]
        assert superseded in new_subjects and item["was"] == next(
            i["title"] for i in spike["items"] if i["id"] == superseded)
        assert f"update · **{item['severity']}** {item['title']} (was: {item['was']})" in \
            messages(receiver, "apprise")[-1]["message"]
    every = [item for m in messages(receiver, "webhook") for item in m["items"]]
    assert len({item["id"] for item in every}) == len(every)
    assert TOKEN not in everything_stored(settings)
    logs = stored_logs(first["flow_run_id"], again["flow_run_id"])
    assert "alert(s) sent" in logs and TOKEN not in logs
    assert any("JSON" in line for line in apprise_log) and TOKEN not in "\n".join(apprise_log)


def test_alerts_wait_for_the_end_of_quiet_hours_and_then_go_with_the_morning_brief(
        make_project, scripted_llm, receiver, monkeypatch):
    now = datetime.now(timezone.utc)
    around_now = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"  # wraps at midnight too
    settings = alerting(make_project, scripted_llm, receiver, monkeypatch,
                        f'quiet_hours = "{around_now}"\ntimezone = "UTC"\n')

    quiet = cycle(settings)

    deliver = quiet["stages"]["deliver"]
    assert receiver.messages == [] and deliver["sent"] == 0 and deliver["held"] > 0
    assert quiet["status"] == "completed" and (settings.briefs_dir / f"{quiet['cycle_id']}.html").exists()
    held = query(settings, "select channel, status, error, len(insight_ids) from deliveries "
                           "where channel <> 'brief_file' order by channel")
    assert held == [("apprise", "held", "quiet hours", deliver["held"] // 2), ("webhook", "held", "quiet hours", deliver["held"] // 2)]

    set_policy(settings, "")  # the quiet hours are over
    morning = run_morning_brief(settings.project_dir)  # no new cycle: the latest brief again, and what it held

    assert (morning["cycle_id"], morning["status"]) == (quiet["cycle_id"], "completed")
    webhook = messages(receiver, "webhook")
    assert len(webhook) == len(messages(receiver, "apprise")) == 1 and morning["deliver"]["sent"] == 2
    held_ids = query(settings, "select insight_ids from deliveries where channel = 'webhook' and status = 'held'")[0][0]
    assert [item["id"] for item in webhook[0]["items"]] == held_ids
    run_morning_brief(settings.project_dir)
    cycle(settings)
    assert len(receiver.messages) == 2  # sent once


def test_an_insight_marked_noise_stops_alerts_of_its_subject(make_project, scripted_llm, receiver, monkeypatch):
    settings = alerting(make_project, scripted_llm, receiver, monkeypatch)
    generate(settings.landing_dir, 1)
    late_copy(settings, "late")
    cycle(settings)
    [first] = messages(receiver, "webhook")
    noisy = first["items"][0]
    give_feedback(settings.warehouse, noisy["id"], "noise")
    subject = query(settings, "select kind, metric, dimension, member from memory where id = ?", [noisy["id"]])[0]

    late_copy(settings, "later")
    cycle(settings)

    later = [item for m in messages(receiver, "webhook")[1:] for item in m["items"]]
    assert later, "the other subjects' new values are still sent"
    kept = query(settings, "select id from memory where status = 'active' and kind = ? and metric = ? and "
                           "dimension = ? and member = ?", list(subject))
    assert kept and kept[0][0] != noisy["id"]  # the subject has a new value ...
    assert kept[0][0] not in {item["id"] for item in later}  # ... and nobody is told


@pytest.mark.reliability("fault")
def test_a_channel_that_answers_500_degrades_the_cycle_is_recorded_and_is_owed_its_alerts(
        make_project, scripted_llm, receiver, monkeypatch):
    settings = alerting(make_project, scripted_llm, receiver, monkeypatch)
    receiver.status = 500

    failed = cycle(settings)

    assert failed["status"] == "degraded"
    deliver = failed["stages"]["deliver"]
    assert deliver["sent"] == 0 and (settings.briefs_dir / "latest.html").exists()
    port = receiver.port
    assert deliver["errors"] == [f"webhook: 127.0.0.1:{port} answered HTTP 500",
                                 "apprise: JSON (URL 1) did not deliver: Failed to send JSON POST notification: "
                                 "Internal server error., error=500."]
    rows = query(settings, "select channel, status, target, error, len(insight_ids) > 0 from deliveries "
                           "where channel <> 'brief_file' order by channel")
    assert rows == [("apprise", "failed", "", deliver["errors"][1].removeprefix("apprise: "), True),
                    ("webhook", "failed", "", deliver["errors"][0].removeprefix("webhook: "), True)]
    tried = len(receiver.messages)
    assert tried == 2  # one try each, no retries behind the cycle's back

    receiver.status = 200
    healed = cycle(settings)  # no new data: the alerts the failure owed

    assert healed["status"] == "completed" and healed["stages"]["deliver"]["sent"] == 2
    owed = query(settings, "select insight_ids from deliveries where channel = 'webhook' and status = 'failed'")[0][0]
    assert [item["id"] for item in messages(receiver, "webhook")[-1]["items"]] == owed
    cycle(settings)
    assert len(receiver.messages) == tried + 2
    assert TOKEN not in everything_stored(settings)


def test_the_analysts_note_on_a_change_already_alerted_is_not_a_second_alert(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    now = datetime.now()
    day = date(2026, 2, 3)

    def item(kind: str, title: str, source: str, metric: str | None = "revenue", period=day) -> dict:
        detector = source.startswith("detector")
        return {"kind": kind, "title": title, "metric": metric, "dimension": "country", "member": "DE",
                "period_start": period, "severity": "warning" if detector else "critical",
                "score": 0.9 if detector else None, "source": source, "evidence": {}}

    with warehouse.connect() as con:
        items = [item("unusual_change", "revenue down 92.6% (country DE) on 2026-02-03", "detector:unusual_change"),
                 item("anomaly", "revenue (country DE) collapsed on 2026-02-03", "model"),
                 item("risk", "payments may be failing in DE", "model", metric=None, period=None),
                 item("hypothesis", "a holiday in DE could explain part of it", "model", metric=None, period=None)]
        ids = [insert_item(con, i, fingerprint(i["kind"], i["metric"], i["dimension"], i["member"], i["period_start"]),
                           "c1", None, now) for i in items]
        alerts = alerts_for(con, "webhook", "c1", AlertSettings(), now)

    # the note about the same day and slice is left out, though the model called it more severe; notes about no
    # metric each stand on their own
    assert sorted(a.id for a in alerts) == sorted([ids[0], ids[2], ids[3]])
