"""Delivery channels: today's brief file and artifact by default, a webhook over real HTTP, failures that degrade."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from reverie.channels import (
    CHANNELS,
    Alert,
    Brief,
    BriefItem,
    ChannelError,
    UnknownChannel,
    build_channel,
)
from reverie.channels.apprise_urls import AppriseOptions, AppriseUrls
from reverie.channels.prefect_block import PrefectBlockOptions
from reverie.channels.webhook import Webhook, WebhookOptions
from reverie.config import AlertSettings, ConfigError, DeliverSettings, load_settings
from reverie.flows.local_run import run_cycle
from reverie.project import scaffold
from tests.helpers.logs import logged_at_debug, stored_logs
from tests.helpers.projects import project_delivering
from tests.helpers.receiver import TOKEN, Receiver
from tests.helpers.warehouse import everything_stored, query

URL_ENV = "REVERIE_TEST_WEBHOOK_URL"
MEMORY_ID = re.compile(r"mem-[0-9a-f]{12}")
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def http_log():
    """Everything httpx and httpcore log, at DEBUG."""
    with logged_at_debug("httpx", "httpcore") as messages:
        yield messages


def latest_artifact(key: str):
    async def read():
        async with get_client() as client:
            return await client.read_latest_artifacts()
    return next(a for a in asyncio.run(read()) if a.key == key)


def test_by_default_the_brief_is_a_file_and_a_prefect_artifact_each_recorded_in_deliveries(make_project, scripted_llm):
    settings = project_delivering(make_project, scripted_llm)

    result = run_cycle(settings.project_dir)

    assert result["status"] == "completed", result
    cycle_id, deliver = result["cycle_id"], result["stages"]["deliver"]
    path = settings.briefs_dir / f"{cycle_id}.md"
    assert (deliver["brief"], deliver["sent"], deliver["errors"]) == (str(path), 0, [])
    markdown = path.read_text()
    assert markdown.startswith(f"# reverie brief — {settings.name}\n") and f"Cycle `{cycle_id}`" in markdown
    assert (settings.briefs_dir / "latest.md").read_text() == markdown
    page, data = path.with_suffix(".html"), json.loads(path.with_suffix(".json").read_text())
    assert deliver["page"] == str(page) and page.read_text().startswith("<!doctype html>")
    assert (settings.briefs_dir / "latest.html").read_text() == page.read_text()
    assert data["cycle_id"] == cycle_id and {i["id"] for i in data["changes"] + data["notes"]} == set(MEMORY_ID.findall(markdown))
    link = latest_artifact("reverie-brief-page")
    assert page.resolve().as_uri() in link.data  # Prefect keeps a link artifact as a markdown link
    artifact = latest_artifact("reverie-brief")
    assert artifact.data == markdown and artifact.description == f"reverie brief for cycle {cycle_id}"
    assert deliver["channels"] == {"brief_file": str(path), "prefect_artifact": str(artifact.latest_id)}

    ids = set(MEMORY_ID.findall(markdown))
    assert len(ids) == deliver["insights"] > 0
    fingerprints = query(settings, "select list(fingerprint order by fingerprint) from memory where list_contains(?, id)",
                         [sorted(ids)])[0][0]
    rows = query(settings, "select channel, status, target, list_sort(fingerprints), error, alerts from deliveries "
                           "where cycle_id = ? order by channel", [cycle_id])
    assert rows == [("brief_file", "sent", str(path), fingerprints, None, None),
                    ("prefect_artifact", "sent", str(artifact.latest_id), fingerprints, None, None)]


@pytest.mark.reliability("secret")
def test_a_webhook_receives_one_json_message_with_the_cycles_alerts_and_nothing_twice(
        make_project, scripted_llm, receiver, monkeypatch, http_log):
    monkeypatch.setenv(URL_ENV, receiver.url)
    settings = project_delivering(make_project, scripted_llm, 'channels = ["brief_file", "prefect_artifact", "webhook"]\n'
                                                              f'[deliver.webhook]\nurl_env = "{URL_ENV}"\ntop_items = 1\n')

    first = run_cycle(settings.project_dir)

    assert first["status"] == "completed", first
    deliver = first["stages"]["deliver"]
    target = f"127.0.0.1:{receiver.port}"
    assert (deliver["sent"], deliver["errors"], deliver["channels"]["webhook"]) == (1, [], target)
    assert receiver.paths == [f"/hooks/{TOKEN}"] and receiver.content_types == ["application/json"]
    [message] = receiver.messages
    assert (message["project"], message["cycle_id"], message["brief"]) == (settings.name, first["cycle_id"], deliver["page"])
    alerted = deliver["alerts"]["webhook"]
    items = message["items"]
    assert len(items) == 1 and len(items) + message["more"] == len(alerted) > 1
    assert items[0]["id"] == alerted[0]
    in_brief = set(MEMORY_ID.findall(Path(deliver["brief"]).read_text()))
    quality = {i for (i,) in query(settings, "select id from memory where kind = 'data_quality' and status = 'active'")}
    assert set(alerted) <= in_brief | quality and set(alerted) & in_brief
    severities = query(settings, "select severity from memory where list_contains(?, id)", [alerted])
    assert SEVERITY_RANK[items[0]["severity"]] == min(SEVERITY_RANK[s] for (s,) in severities)  # the most severe first
    assert all(item["id"] in message["text"] and item["title"] in message["text"] for item in items)
    assert query(settings, "select status, target, insight_ids from deliveries where channel = 'webhook'") == [
        ("sent", target, alerted)]

    second = run_cycle(settings.project_dir)  # the same data: the same insights, confirmed, are no news

    assert second["stages"]["deliver"]["sent"] == 0 and second["stages"]["deliver"]["alerts"] == {"webhook": []}
    assert len(receiver.messages) == 1
    assert query(settings, "select count(*) from deliveries where channel = 'webhook'") == [(1,)]
    # the URL's path is its secret: it reached the receiver and nothing else
    assert TOKEN not in everything_stored(settings)
    assert http_log and TOKEN not in "\n".join(http_log)
    logs = stored_logs(first["flow_run_id"], second["flow_run_id"])
    assert "deliver: brief with" in logs and TOKEN not in logs
    assert TOKEN not in json.dumps([first, second])


@pytest.mark.parametrize("failure", ["answers 500", "is not listening"])
@pytest.mark.reliability("secret")
def test_a_failing_webhook_degrades_the_deliver_stage_and_the_other_channels_still_deliver(
        make_project, scripted_llm, receiver, monkeypatch, http_log, failure):
    if failure == "answers 500":
        receiver.status = 500
        monkeypatch.setenv(URL_ENV, receiver.url)
        expected = f"webhook: 127.0.0.1:{receiver.port} answered HTTP 500"
    else:
        monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:9/hooks/{TOKEN}")  # discard port: nothing listens
        expected = "webhook: cannot reach 127.0.0.1:9 (ConnectError)"
    # listed first: the channels after it still run
    settings = project_delivering(make_project, scripted_llm, 'channels = ["webhook", "brief_file", "prefect_artifact"]\n'
                                                              f'[deliver.webhook]\nurl_env = "{URL_ENV}"\n')

    result = run_cycle(settings.project_dir)

    assert result["status"] == "degraded"
    deliver = result["stages"]["deliver"]
    assert (deliver["errors"], deliver["sent"]) == ([expected], 0)
    assert set(deliver["channels"]) == {"brief_file", "prefect_artifact"}
    assert Path(deliver["brief"]).exists() and (settings.briefs_dir / "latest.md").exists()
    assert query(settings, "select channel, status, error from deliveries order by channel") == [
        ("brief_file", "sent", None), ("prefect_artifact", "sent", None),
        ("webhook", "failed", expected.removeprefix("webhook: "))]
    logs = stored_logs(result["flow_run_id"])
    assert f"deliver: webhook failed: {expected.removeprefix('webhook: ')}" in logs
    assert len(receiver.messages) == (1 if failure == "answers 500" else 0)  # no retries behind the cycle's back
    assert TOKEN not in everything_stored(settings)
    assert TOKEN not in logs and TOKEN not in "\n".join(http_log) and TOKEN not in json.dumps(result)


def a_brief(folder: Path, items: int = 2) -> Brief:
    return Brief(project="shop", cycle_id="c1", markdown="# brief\n", briefs_dir=folder,
                 items=tuple(BriefItem(id=f"mem-{n:012x}", kind="anomaly", title=f"revenue moved {n}", severity="warning",
                                       score=0.5, fingerprint=f"fp{n}") for n in range(items)))


@pytest.mark.reliability("secret")
def test_a_webhook_without_its_url_names_the_variable_and_never_echoes_a_bad_value(tmp_path, monkeypatch):
    channel = Webhook(WebhookOptions(url_env=URL_ENV))
    monkeypatch.delenv(URL_ENV, raising=False)
    with pytest.raises(ChannelError, match=f"^environment variable {URL_ENV} is not set \\(\\[deliver.webhook\\] url_env\\)$"):
        channel.send(a_brief(tmp_path))
    monkeypatch.setenv(URL_ENV, f"hooks.example.com/{TOKEN}")  # no scheme: not a URL httpx can post to
    with pytest.raises(ChannelError, match=f"^environment variable {URL_ENV} does not hold an http\\(s\\) URL$"):
        channel.send(a_brief(tmp_path))


@pytest.mark.reliability("secret")
def test_apprise_without_a_url_names_the_variable_and_a_bad_url_is_not_echoed(tmp_path, monkeypatch):
    monkeypatch.delenv("REVERIE_APPRISE_URLS", raising=False)
    brief = replace(a_brief(tmp_path), alerts=(Alert("mem-000000000001", "anomaly", "revenue moved", "warning", "fp"),))
    with pytest.raises(ChannelError, match=r"^no Apprise URL: set the environment variable REVERIE_APPRISE_URLS"):
        AppriseUrls().send(brief)
    monkeypatch.setenv("REVERIE_APPRISE_URLS", f"nosuchservice://{TOKEN}")
    with pytest.raises(ChannelError, match=r"^URL 1 is not an Apprise URL$"):
        AppriseUrls().send(brief)


def test_a_prefect_notification_block_delivers_the_alerts_and_a_missing_one_is_named(make_project, scripted_llm,
                                                                                      receiver):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(name="reverie-test", url=receiver.url, allow_private_urls=True,
                                   json_data={"title": "{{subject}}", "text": "{{body}}"}).save("data-alerts",
                                                                                                overwrite=True)
    settings = project_delivering(make_project, scripted_llm, 'channels = ["brief_file", "prefect_block"]\n'
                                                              '[deliver.prefect_block]\nblock = "custom-webhook/nobody"\n')

    missing = run_cycle(settings.project_dir)

    assert missing["status"] == "degraded" and receiver.messages == []
    assert missing["stages"]["deliver"]["errors"][0].startswith("prefect_block: cannot load block 'custom-webhook/nobody'")
    config = settings.project_dir / "reverie.toml"
    config.write_text(config.read_text().replace("custom-webhook/nobody", "custom-webhook/data-alerts"))

    result = run_cycle(settings.project_dir)  # no new data: what the missing block was owed

    deliver = result["stages"]["deliver"]
    assert result["status"] == "completed" and deliver["sent"] == 1
    assert deliver["channels"]["prefect_block"] == "custom-webhook/data-alerts"
    assert deliver["alerts"]["prefect_block"] == missing["stages"]["deliver"]["alerts"]["prefect_block"]
    [message] = receiver.messages
    assert message["title"].startswith(f"reverie — {settings.name}: ") and deliver["page"] in message["text"]
    assert MEMORY_ID.findall(message["text"]) == deliver["alerts"]["prefect_block"][:5]


def test_the_factory_builds_registered_channels_and_names_an_unknown_one(tmp_path):
    assert set(CHANNELS) == {"brief_file", "prefect_artifact", "apprise", "prefect_block", "webhook"}
    assert build_channel("webhook").options == WebhookOptions()
    assert build_channel("brief_file").send(a_brief(tmp_path)) == str(tmp_path / "c1.md")
    with pytest.raises(UnknownChannel, match=r"^channels: 'slack' is not one of brief_file, prefect_artifact, apprise, prefect_block, webhook$"):
        build_channel("slack")


def test_deliver_defaults_to_the_brief_file_and_the_prefect_artifact(tmp_path):
    assert load_settings(tmp_path).deliver.channels == DeliverSettings().channels == ("brief_file", "prefect_artifact")


def test_the_templates_deliver_examples_are_the_defaults(tmp_path):
    scaffold(tmp_path)
    config = tmp_path / "reverie.toml"
    head, deliver = config.read_text().split("[deliver]\n")
    config.write_text(head + "[deliver]\n" + re.sub(r"(?m)^# (?=\[|\w+ = )", "", deliver))
    settings = load_settings(tmp_path).deliver
    assert settings.channels == DeliverSettings().channels and settings.options["webhook"] == WebhookOptions()
    assert settings.options["apprise"] == AppriseOptions() and settings.options["prefect_block"] == PrefectBlockOptions()
    assert settings.alerts == AlertSettings(timezone="UTC")


@pytest.mark.parametrize("text, message", [
    ('[deliver]\nchannels = ["brief_file", "slack"]\n',
     r"\[deliver\] channels: 'slack' is not one of brief_file, prefect_artifact, apprise, prefect_block, webhook$"),
    (f'[deliver]\nchannels = ["brief_file", "https://hooks.example.com/{TOKEN}"]\n',
     r"\[deliver\] channels: an entry is not one of brief_file, prefect_artifact, apprise, prefect_block, webhook$"),
    ('[deliver]\nchannels = "brief_file"\n', r"\[deliver\] channels must be a list of channel names"),
    ('[deliver]\nchannels = ["prefect_artifact"]\n', r"\[deliver\] channels must include brief_file$"),
    ('[deliver]\nchannels = ["brief_file", "webhook", "webhook"]\n', r"\[deliver\] channels: webhook listed more than once"),
    ('[deliver.slack]\nurl_env = "SLACK"\n', r"\[deliver\]: unknown field 'slack' \(known: channels, min_severity, kinds, "
                                            r"quiet_hours, timezone, suppress_days, and a table per channel: brief_file, "),
    ('[deliver]\nmin_severity = "high"\n', r"\[deliver\] min_severity = 'high': must be one of info, warning, critical$"),
    ('[deliver]\nquiet_hours = "22-7"\n', r"\[deliver\] quiet_hours = '22-7': must read HH:MM-HH:MM"),
    ('[deliver]\ntimezone = "Mars/Base"\n', r"\[deliver\] timezone = 'Mars/Base': not a time zone"),
    ('[deliver]\nkinds = "change"\n', r"\[deliver\] kinds: expected a list, got 'change'$"),
    ('[deliver]\nsuppress_days = -1\n', r"\[deliver\] suppress_days = -1.0: must be at least 0"),
    ('[deliver.prefect_block]\nblock = "my slack"\n', r"\[deliver.prefect_block\] block = 'my slack': must read <block-type-slug>/<name>"),
    (f'[deliver.apprise]\nurls_env = "slack://{TOKEN}"\n', r"\[deliver.apprise\] urls_env: not the name of an environment variable"),
    ('[deliver]\nbrief_file = 3\n', r"\[deliver.brief_file\] must be a table"),
    ('[deliver.prefect_artifact]\nkey = "x"\n', r"\[deliver.prefect_artifact\]: the prefect_artifact channel has no options"),
    ('[deliver.webhook]\nurl = "x"\n', r"\[deliver.webhook\]: unknown field 'url' — did you mean 'url_env'\?$"),
    ('[deliver.webhook]\ntimeout_seconds = 0\n', r"\[deliver.webhook\] timeout_seconds = 0.0: must be at least 0.1"),
    ('[deliver.webhook]\ntop_items = "all"\n', r"\[deliver.webhook\] top_items: expected an integer, got 'all'$"),
    (f'[deliver.webhook]\nurl_env = "https://hooks.example.com/{TOKEN}"\n',
     r"\[deliver.webhook\] url_env: not the name of an environment variable"),
])
@pytest.mark.reliability("secret")
def test_bad_deliver_config_names_the_file_and_the_field_and_never_echoes_a_url(tmp_path, text, message):
    (tmp_path / "reverie.toml").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'reverie.toml'}: ") and TOKEN not in str(info.value)


def test_a_brief_that_cannot_be_written_is_an_error_not_a_path(make_project, scripted_llm):
    settings = project_delivering(make_project, scripted_llm)
    settings.briefs_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.briefs_dir.write_text("a file where the briefs folder should be")

    result = run_cycle(settings.project_dir)

    assert result["status"] == "degraded"
    deliver = result["stages"]["deliver"]
    assert deliver["brief"] is None and list(deliver["channels"]) == ["prefect_artifact"]
    assert len(deliver["errors"]) == 1 and deliver["errors"][0].startswith("brief_file: ")
    assert query(settings, "select channel, status from deliveries order by channel") == [
        ("brief_file", "failed"), ("prefect_artifact", "sent")]
