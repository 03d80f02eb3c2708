"""The brief as a page, opened in a real browser (headless Chromium, offline): its charts' marks in the DOM match the
data, it fits a phone, and `reverie brief` prints it, writes it and gives its items."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from reverie.flows.local_run import run_cycle
from reverie.generator import generate
from reverie.tasks.deliver.page import COLOURS, bar_colour, baseline_label, chart_data, series_svg
from reverie.warehouse import Warehouse
from tests.helpers.browser import Browser
from tests.helpers.processes import reverie
from tests.helpers.projects import new_project
from tests.helpers.scripted_llm import finish

MARKS = """(() => [...document.querySelectorAll('figure.chart')].map(figure => ({
    metric: figure.dataset.metric, flagged: +figure.dataset.flagged, points: +figure.dataset.points,
    drawnFlagged: figure.querySelectorAll('g[id$="-flagged"] use').length,
    band: figure.querySelectorAll('g[id$="-band"] path').length,
    line: figure.querySelectorAll('g[id$="-series"] path').length,
    drivers: figure.querySelector('.drivers') ? +figure.querySelector('.drivers').dataset.members : 0,
    bars: figure.querySelectorAll('g[id*="-driver-"]').length,
    fills: [...figure.querySelectorAll('g[id*="-driver-"] path')].map(p => p.style.fill),
    expected: figure.querySelectorAll('g[id$="-expected"] path').length,
    legend: [...figure.querySelectorAll('text')].map(t => t.textContent).join(' '),
    width: figure.querySelector('svg').getBoundingClientRect().width,
})))()"""


def hex_colour(css: str) -> str:
    """rgb(46, 125, 50) or #2e7d32, as #2e7d32."""
    if css.startswith("#"):
        return css.lower()
    return "#" + "".join(f"{int(n):02x}" for n in css.removeprefix("rgb(").removesuffix(")").split(","))


@pytest.fixture(scope="module")
def delivered(tmp_path_factory, session_llm):
    """A project 90 days in (planted events, one of the whole business with drivers), after one cycle."""
    session_llm.script(finish, finish)
    settings = new_project(tmp_path_factory.mktemp("shop"), days=90, base_url=session_llm.base_url)
    result = run_cycle(settings.project_dir)
    assert result["status"] == "completed", result
    return settings, result


@pytest.mark.heavy("Chromium")
@pytest.mark.needs("chromium")
def test_the_page_opens_offline_with_each_changed_series_its_band_and_flagged_points(delivered, tmp_path):
    settings, result = delivered
    page = settings.briefs_dir / f"{result['cycle_id']}.html"
    document = json.loads(page.with_suffix(".json").read_text())

    with Browser(width=1000) as browser:
        browser.open(page)
        charts = browser.evaluate(MARKS)
        shot = browser.screenshot(tmp_path / "brief.png")
        titles = browser.evaluate("[...document.querySelectorAll('#new article .title, #still-open .title')]"
                                  ".map(t => t.textContent)")
        requests = browser.evaluate("performance.getEntriesByType('resource').length")

    assert requests == 0  # nothing fetched: scripts, styles, fonts and charts are all in the file
    assert shot.stat().st_size > 50_000 and shot.read_bytes()[:4] == b"\x89PNG"
    assert len(charts) == len(document["charts"]) > 0
    by_id = {c["id"]: c for c in document["changes"]}
    for chart, data in zip(charts, document["charts"]):
        assert chart["metric"] == data["metric"] and chart["points"] == len(data["series"])
        assert chart["drawnFlagged"] == chart["flagged"] == len(data["flagged"]) > 0
        assert chart["band"] == 1 and chart["line"] == 1
        assert chart["bars"] == chart["drivers"] == (len(data["drivers"]["members"]) if data["drivers"] else 0)
        # the dashed baseline is named in the unusual-change headline's own words
        baseline = "median of the same weekday over the previous 4 weeks" if data["grain"] == "day" else (
            "median of the previous 4 periods")
        assert baseline_label(data["grain"], [r for r in data["series"] if r["expected"] is not None]) == baseline
        assert chart["expected"] == 1 and baseline in chart["legend"]
        assert all(baseline in by_id[i]["title"] for i in data["items"] if by_id[i]["kind"] == "unusual_change")
        if data["drivers"]:  # bars drawn bottom up; green is good news for this metric, red bad
            parts = [m["contribution"] for m in data["drivers"]["members"]][::-1]
            wanted = [COLOURS[bar_colour(p, data["favourability"])] for p in parts]
            assert [hex_colour(fill) for fill in chart["fills"]] == wanted
    assert any(chart["bars"] for chart in charts)  # the headline change of the whole business has its drivers
    assert sorted(t.removeprefix("↳ ").removeprefix("changed: ") for t in titles) == sorted(
        c["title"] for c in document["changes"])


@pytest.mark.without_prefect
def test_a_young_sources_chart_draws_its_baseline_from_the_weeks_there_are(tmp_path):
    """Three weeks of a source: the dashed baseline starts where unusual_change can first compare a day (two earlier
    same weekdays) and is named with the weeks it rests on, as that headline is; no usual range yet (four weeks)."""
    first = datetime(2026, 3, 2)
    with Warehouse(tmp_path / "warehouse.duckdb").connect() as con:
        con.executemany("insert into metric_values (metric, grain, period_start, dimension, member, value, complete, "
                        "cycle_id) values ('orders', 'day', ?, 'overall', 'all', ?, true, 'test')",
                        [(first + timedelta(days=i), 100.0 + i % 7) for i in range(20)] + [(first + timedelta(20), 30.0)])
        item = {"id": "mem-1", "metric": "orders", "source": "detector:unusual_change", "kind": "unusual_change",
                "dimension": None, "member": None, "valid_from": "2026-03-22", "valid_to": "2026-03-22", "evidence": {}}
        (chart,) = chart_data(con, [item], {"orders": {"scale": "relative", "favourability": "up"}})
    baselined = [r for r in chart["series"] if r["expected"] is not None]
    assert [r["period"] for r in baselined] == [(first + timedelta(days=i)).date() for i in range(14, 21)]
    assert baselined[-1]["expected"] == 106 and baselined[-1]["baseline_periods"] == 2  # two Sundays of 106 before
    assert all(r["low"] is None for r in chart["series"])
    label = baseline_label("day", baselined)
    assert label == "median of the same weekday over the previous 2 weeks" and label in series_svg(chart, 1)


@pytest.mark.heavy("Chromium")
@pytest.mark.needs("chromium")
def test_the_page_fits_a_phone_without_scrolling_sideways(delivered, tmp_path):
    settings, result = delivered
    with Browser(width=390, height=844, mobile=True) as browser:
        browser.open(settings.briefs_dir / "latest.html")
        widths = browser.evaluate("({page: document.documentElement.scrollWidth, window: window.innerWidth, "
                                  "charts: [...document.querySelectorAll('figure.chart svg')]"
                                  ".map(s => s.getBoundingClientRect().width), text: [...document.querySelectorAll("
                                  "'figure.chart svg')].flatMap(s => [...s.querySelectorAll('text')].map(t => "
                                  "parseFloat(getComputedStyle(t).fontSize) * s.getBoundingClientRect().width / "
                                  "s.viewBox.baseVal.width))})")
        browser.screenshot(tmp_path / "phone.png")
    assert widths["page"] <= widths["window"] == 390
    assert widths["charts"] and all(300 <= width <= 390 for width in widths["charts"])
    assert widths["text"] and min(widths["text"]) >= 8  # the charts' words read on a phone (px as drawn)


def test_reverie_brief_prints_the_latest_writes_its_page_and_gives_its_items(delivered, tmp_path):
    settings, result = delivered
    folder = settings.project_dir

    shown = reverie("brief", cwd=folder)
    as_json = reverie("brief", "--json", cwd=folder)
    written = reverie("brief", "--html", str(tmp_path), cwd=folder)

    assert shown.returncode == 0 and f"reverie brief — {settings.name}" in shown.stdout
    document = json.loads((settings.briefs_dir / "latest.json").read_text())
    assert document["changes"][0]["title"][:40] in " ".join(shown.stdout.split())
    narrow = reverie("brief", cwd=folder, COLUMNS="60")  # wrapped at the terminal's width, never cut
    header = f"Cycle {result['cycle_id']} · data up to {document['reach']} · {document['metrics_rows']} metric values refreshed"
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60 and header in " ".join(narrow.stdout.split())
    items = json.loads(as_json.stdout)
    assert items["cycle_id"] == result["cycle_id"] and items["page"] == str(settings.briefs_dir / "latest.html")
    assert [i["id"] for i in items["items"]] == [i["id"] for i in document["changes"] + document["notes"]]
    copy = tmp_path / f"brief-{result['cycle_id']}.html"
    assert written.returncode == 0 and str(copy) in written.stdout
    assert copy.read_text() == (settings.briefs_dir / "latest.html").read_text()


def test_reverie_brief_before_any_cycle_says_how_to_get_one(tmp_path):
    generate(tmp_path / "landing", 1)
    missing = reverie("brief", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip() == (
        "error: no brief yet in .reverie/briefs: `reverie run` (or `reverie demo`) writes one")
    bad = reverie("brief", "--cycle", "../../etc/passwd", cwd=tmp_path)
    assert bad.returncode == 2 and "is not a cycle id" in bad.stderr and "Traceback" not in bad.stderr

