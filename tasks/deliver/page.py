"""The brief as a page: one HTML file with its charts inline as SVG (matplotlib), so it opens offline and on a phone."""

from __future__ import annotations

import io
import json
from datetime import date

from reverie.paths import TEMPLATES_DIR
from reverie.queries import rows_as_dicts, sql_file
from reverie.tasks.deliver.markdown import quality_verdict, stories, week_on_week
from reverie.wording import unchecked_text, value_text

CHARTS = 6  # changed series drawn, in the brief's order (what is new, most severe first); the rest without one
# inches: drawn about as wide as a phone shows it, so its text reads at ~9 px there (the page caps it on a desktop)
FIGURE_WIDTH = 4.0
SERIES_DAYS = {"day": 56, "week": 26 * 7, "month": 730}
TEMPLATE = TEMPLATES_DIR / "brief.html.j2"
COLOURS = {"series": "#1f4e79", "band": "#9ab7d3", "expected": "#5b6776", "flagged": "#c0392b", "good": "#2e7d32",
           "bad": "#c0392b", "neutral": "#1f4e79"}
BASELINE_WORDS = {"day": "median of the same weekday over the previous {} weeks",
                  "other": "median of the previous {} periods"}  # the unusual-change headline's words for its baseline


def _period(value) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def _evidence(item: dict) -> dict:
    evidence = item.get("evidence")
    return (json.loads(evidence) if isinstance(evidence, str) else evidence) or {}


def chart_data(con, items: list[dict], readings: dict[str, dict]) -> list[dict]:
    """For each changed series (metric and slice) of the brief's detector items, in the brief's order: its recent
    values with their usual range, the days the items flagged, and the lead dimension's drivers of the headline
    change. `readings`: each metric's scale and favourability."""
    charts: dict[tuple, dict] = {}
    # a share or a goal is not a point of a series that moved: what its detector's header says describes no change
    unchanging = {name for (name,) in con.execute("select name from detectors where not describes_change").fetchall()}
    for item in items:
        if not item.get("metric") or not item["source"].startswith("detector:") or item["kind"] in unchanging:
            continue
        grain = _evidence(item).get("grain") or "day"
        key = (item["metric"], grain, item["dimension"] or "overall", item["member"] or "all")
        if key not in charts:
            if len(charts) == CHARTS:
                continue
            rows = rows_as_dicts(con.execute(sql_file("deliver/chart_series.sql"), {
                "metric": key[0], "grain": grain, "dimension": key[2], "member": key[3],
                "days": SERIES_DAYS.get(grain, 56)}))
            if len(rows) < 2:
                continue
            charts[key] = {"metric": key[0], "grain": grain, "dimension": key[2], "member": key[3],
                           "scale": readings.get(key[0], {}).get("scale", "relative"),
                           "favourability": readings.get(key[0], {}).get("favourability", "neutral"),
                           "series": rows, "flagged": [], "items": [], "drivers": None}
        chart = charts[key]
        chart["items"].append(item["id"])
        first, last = _period(item.get("valid_from")), _period(item.get("valid_to")) or _period(item.get("valid_from"))
        chart["flagged"] += [r["period"] for r in chart["series"] if first and first <= r["period"] <= last
                             and r["period"] not in chart["flagged"]]
        drivers = _evidence(item).get("drivers")
        if drivers and chart["drivers"] is None:
            lead = drivers["dimensions"][0]
            chart["drivers"] = {"dimension": lead["dimension"], "of": item["id"],
                                "members": [{"member": p["member"], "contribution": p["contribution"]}
                                            for p in [*lead["drivers"], *lead["detractors"]]]}
    return [chart for chart in charts.values() if chart["flagged"]]  # a change older than the series: no chart


def _svg(figure, gid_prefix: str) -> str:
    """A figure as inline SVG, its ids unique on the page."""
    from matplotlib import rc_context

    buffer = io.StringIO()
    with rc_context({"svg.hashsalt": gid_prefix}):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def _axis_format(axis, scale: str) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: value_text(value, scale)))


def series_svg(chart: dict, number: int) -> str:
    """The series as a line, its usual range as a band, the baseline the headline compares with as a dashed line
    (named in the headline's words), the flagged periods as red points; each mark an SVG group with an id
    (chart<n>-series, -band, -expected, -flagged) that a browser test can count."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    rows = chart["series"]
    periods = [r["period"] for r in rows]
    figure = Figure(figsize=(FIGURE_WIDTH, 2.4))
    axes = figure.subplots()
    banded = [r for r in rows if r["low"] is not None]
    if banded:
        band = axes.fill_between([r["period"] for r in banded], [r["low"] for r in banded],
                                 [r["high"] for r in banded], color=COLOURS["band"], alpha=0.45, linewidth=0,
                                 label="usual range (same weekday, 8 weeks before)" if chart["grain"] == "day"
                                 else "usual range (8 periods before)")
        band.set_gid(f"chart{number}-band")
    baselined = [r for r in rows if r["expected"] is not None]
    if baselined:
        (expected,) = axes.plot([r["period"] for r in baselined], [r["expected"] for r in baselined], linestyle="--",
                                linewidth=1, color=COLOURS["expected"], label=baseline_label(chart["grain"], baselined))
        expected.set_gid(f"chart{number}-expected")
    (line,) = axes.plot(periods, [r["value"] for r in rows], color=COLOURS["series"], linewidth=1.6,
                        label=chart["metric"])
    line.set_gid(f"chart{number}-series")
    flagged = [r for r in rows if r["period"] in chart["flagged"]]
    if flagged:
        points = axes.scatter([r["period"] for r in flagged], [r["value"] for r in flagged], s=36, zorder=3,
                              color=COLOURS["flagged"], label="flagged")
        points.set_gid(f"chart{number}-flagged")
    locator = AutoDateLocator(maxticks=6)
    axes.xaxis.set_major_locator(locator)
    dates = ConciseDateFormatter(locator)
    dates.show_offset = False  # the ticks name the months already
    axes.xaxis.set_major_formatter(dates)
    _axis_format(axes.yaxis, chart["scale"])
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="lower left", bbox_to_anchor=(0, 1), fontsize=9, frameon=False)  # above the plot, one a line
    axes.margins(x=0.01, y=0.25)
    return _svg(figure, f"chart{number}")


def baseline_label(grain: str, rows: list[dict]) -> str:
    """The dashed baseline's name in the unusual-change headline's words, with the periods it rests on (fewer than
    four in a source's first weeks: "2 to 4")."""
    fewest, most = min(r["baseline_periods"] for r in rows), max(r["baseline_periods"] for r in rows)
    return BASELINE_WORDS["day" if grain == "day" else "other"].format(most if fewest == most else f"{fewest} to {most}")


def bar_colour(part: float, favourability: str) -> str:
    """good, bad or neutral: a member's part of a change, judged by which way the metric is good."""
    if favourability not in ("up", "down") or part == 0:
        return "neutral"
    return "good" if (part > 0) == (favourability == "up") else "bad"


def drivers_svg(chart: dict, number: int) -> str:
    """The lead dimension's members as horizontal bars of their part of the change, green where it moved the metric
    the good way and red the bad way (one colour for a metric with no good way); each bar an SVG group with an id
    (chart<n>-driver-<i>)."""
    from matplotlib.figure import Figure

    members = chart["drivers"]["members"]
    figure = Figure(figsize=(FIGURE_WIDTH, 0.5 + 0.3 * len(members)))
    axes = figure.subplots()
    names = [f"{chart['drivers']['dimension']} {m['member']}" for m in members][::-1]
    parts = [m["contribution"] for m in members][::-1]
    bars = axes.barh(names, parts, color=[COLOURS[bar_colour(p, chart["favourability"])] for p in parts], height=0.6)
    for index, bar in enumerate(bars):
        bar.set_gid(f"chart{number}-driver-{index}")
    axes.axvline(0, color="#555", linewidth=0.8)
    _axis_format(axes.xaxis, chart["scale"] if chart["scale"] != "relative" else "absolute")
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=9)
    axes.set_title("part of the change, by member", fontsize=9, loc="left")
    return _svg(figure, f"drivers{number}")


def render_page(document: dict) -> str:
    """The brief's document (tasks.deliver.brief_document) as a standalone HTML page."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup
    from matplotlib import rc_context

    charts = {}
    # text stays text in the SVG (searchable, small, the page's font); sizes are fixed when a chart is drawn
    with rc_context({"svg.fonttype": "none", "font.size": 10, "xtick.labelsize": 9, "ytick.labelsize": 9}):
        for number, chart in enumerate(document["charts"]):
            charts[chart["items"][0]] = {
                "series": Markup(series_svg(chart, number)), "number": number, "chart": chart,
                "drivers": Markup(drivers_svg(chart, number)) if chart["drivers"] else None}
    new = [i for i in document["changes"] if i["news"]]
    environment = Environment(loader=FileSystemLoader(TEMPLATE.parent), autoescape=select_autoescape(["j2"]))
    return environment.get_template(TEMPLATE.name).render(
        brief=document, stories=stories(new), still_open=[i for i in document["changes"] if not i["news"]],
        charts=charts,
        key_metrics=[{**m, "value_text": value_text(m["value"], m["scale"]), "change_text": week_on_week(m)}
                     for m in document["key_metrics"]],
        listed={i["id"] for i in new}, unchecked=[unchecked_text(u) for u in document["unchecked"]],
        quality_verdict=quality_verdict(document))


def page_without_charts(markdown: str, error: str) -> str:
    """The page when it cannot be drawn: the markdown brief, preformatted, and why."""
    from markupsafe import escape

    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
            f"content=\"width=device-width, initial-scale=1\"><title>reverie brief</title></head><body>"
            f"<p>The page's charts could not be drawn ({escape(error)}); the brief follows as text.</p>"
            f"<pre style=\"white-space: pre-wrap\">{escape(markdown)}</pre></body></html>\n")
