"""How the commands' results print for people (`--json` prints them as they are): the cycle's table, memory items,
the demo's and the stats' summaries. One console for results (stdout) and one for errors and progress (stderr)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reverie.summaries import STAGE

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # an error is one line, however long


def emit(payload: dict, as_json: bool, human) -> None:
    """The result as one JSON object on stdout, or as `human` prints it."""
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        human(payload)


def initialised(p: dict) -> None:
    """`reverie init`: what was created and what to declare next; from a dbt project, its metrics as reverie reads
    them and, one a line, those it cannot compute."""
    created = ", ".join(p["created"]) or "nothing (all files exist)"
    if "dbt" not in p:
        out.print(f"{p['project']}: created {created}; declare sources in reverie.toml and metrics in metrics/*.yml",
                  highlight=False)
        return
    out.print(f"{p['project']}: created {created}; reading the dbt project {p['dbt']}", highlight=False)
    for metric in p["metrics"]:
        by = f", by {', '.join(metric['dimensions'])}" if metric["dimensions"] else ""
        out.print(f"  {metric['name']}: {metric['kind']} of {metric['model']}, {'/'.join(metric['grains'])}{by}",
                  highlight=False)
    for line in p["unsupported"] + p["errors"]:
        out.print(f"  {line}", highlight=False, style="yellow")
    if not p["database"] or not Path(p["database"]).exists():
        out.print(f"its DuckDB file {p['database'] or '(none in its profile)'} is not built yet: run `dbt build` in "
                  f"{p['dbt']} before `reverie run`", highlight=False)
    else:
        out.print(f"{len(p['metrics'])} metric(s) from {p['database']}; next: `reverie run` in {p['project']}",
                  highlight=False)


def lineage_text(n: dict) -> str:
    """Where a number of an answer comes from, in words: its metric, slice and day, span, or the two of a change."""
    def days(w: dict) -> str:
        if w.get("between"):
            return "the change from " + " to ".join(days(x) for x in w["between"])
        return f"on {w['day']}" if w.get("day") else f"over {w['start']}..{w['end']}" if w.get("start") else ""

    slice_ = "" if n.get("dimension") in (None, "overall") else f" ({n['dimension']} {n['member']})"
    return f"{n['metric']}{slice_} {days(n)} from {n['from']}".replace("  ", " ")


def red(lines: list[str], prefix: str = "") -> str:
    """Each line on a line of its own, in red, as text (an error's "[sources.x]" is not markup)."""
    return "".join(f"\n[red]{prefix}{escape(line)}[/]" for line in lines)


def stage_line(name: str, summary: dict) -> str:
    """A stage's result as the cycle's table shows it: its line, then what it lost in red."""
    stage = STAGE[name]
    return escape(stage.said(summary)) + red(stage.lost(summary))


def print_cycle(result: dict) -> None:
    """A cycle's status, then a line per stage with its seconds."""
    colour = {"completed": "green", "degraded": "yellow", "failed": "red", "skipped": "yellow"}[result["status"]]
    out.print(f"[bold]sleep cycle[/] {result['cycle_id'] or ''} · flow run {result['flow_run_id']} · "
              f"[{colour}]{result['status']}[/] in {result['seconds']:.1f} s", highlight=False)
    if result.get("error"):
        out.print(f"[red]{escape(result['error'])}[/]", highlight=False)
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("stage")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    for name, stage in result["stages"].items():
        table.add_row(name, stage_line(name, stage), f"{stage['seconds']:.1f}")
    out.print(table)


def print_item(item: dict, facts: str) -> None:
    """One memory item in two lines, its title whole: a table's columns left titles one word per line at 80."""
    out.print(f"[bold]{item['id']}[/]  {escape(facts)}", highlight=False)
    out.print(f"  {escape(item['title'])}", highlight=False)


def print_history(history: list[dict]) -> None:
    """An item's history, a line per change."""
    for h in history:
        change = f"{h['field']}: {h['old_value']} -> {h['new_value']}" if h["field"] else (h["new_value"] or "")
        out.print(f"  {h['changed_at']}  {h['change']:<10} {change}  [dim]{h['cycle_id'] or ''}[/]", highlight=False)


def demo_result(r: dict, memories: list[dict]) -> None:
    """What `reverie demo` did: the data it landed, the cycle, the top of memory and the analyst's notes, the time."""
    g = r["setup"]["generate"]
    out.print(f"[bold]demo data[/] {g['rows']:,} events for {g['first_day']} .. {g['last_day']} "
              f"({g['planted_events']} planted events) in {g['seconds']:.1f} s", highlight=False)
    print_cycle(r)
    notes = [m for m in memories if m["cycle_id"] == r["cycle_id"] and m["source"] != "quality-gate"
             and not m["source"].startswith("detector:")]
    for heading, items in (("top of memory", memories[:5]), ("the analyst's notes this cycle", notes[:3])):
        if items:
            out.print(f"[bold]{heading}[/]")
        for m in items:
            out.print(f"  \\[{m['severity']}] {escape(m['title'])}  [dim]({m['id']}, {escape(m['source'])})[/]",
                      highlight=False)
    bookkeeping = r["total_seconds"] - r["ready_seconds"] - r["seconds"]
    out.print(f"total {r['total_seconds']:.1f} s = start-up {r['ready_seconds']:.1f} s (Prefect's API, imports "
              f"and the demo data at once) + cycle {r['seconds']:.1f} s + Prefect's bookkeeping "
              f"{bookkeeping:.1f} s", highlight=False)
    out.print("next: [bold]reverie brief[/] (or [bold]reverie brief --html .[/] for the page), "
              "[bold]reverie memory list[/], [bold]reverie ask[/] \"...\"", highlight=False)


def stats_result(r: dict) -> None:
    """Sleep-time and query-time cost, and what the nights saved, as `reverie stats` prints them."""
    a = r["amortisation"]
    out.print(f"[bold]sleep time[/] (last {r['days']} days): {len(r['cycles'])} cycle(s), "
              f"{a['night_seconds']:,.1f} s, {a['night_tokens']:,} tokens", highlight=False)
    table = Table(show_header=True, header_style="bold", box=None)
    for column in ("path", "asks", "grounded", "tokens/ask", "p50 s", "p95 s"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for p in r["asks"]:
        table.add_row(p["path"], str(p["asks"]), str(p["grounded"]), f"{p['mean_tokens']:,.0f}",
                      f"{p['p50_seconds']:.2f}", f"{p['p95_seconds']:.2f}")
    out.print("[bold]query time[/]")
    out.print(table)
    if a["saved_tokens"] is None:
        measured = (f"not measured: the {a['cold_asks']} cold ask(s) in this window answered none"
                    if a["cold_asks"] else "not measured: no cold ask in this window")
        out.print(f"amortisation: {measured} (`reverie ask --no-memory \"...\"` measures one)", highlight=False)
    else:
        out.print(f"amortisation: {a['warm_asks']} answered prepared, computed or memory ask(s) saved {a['saved_tokens']:,} tokens and "
                  f"{a['saved_seconds']:,.1f} s against the cold path; the nights spent {a['night_tokens']:,} "
                  f"tokens: net {a['net_tokens']:+,} tokens", highlight=False)


def memory_item(m: dict) -> None:
    """One insight whole, as `reverie memory show` prints it: evidence, where each number comes from, its history."""
    if m["candidate"]:
        out.print(f"[dim]candidate {m['candidate']} became {m['id']}:[/]", highlight=False)
    out.print(f"[bold]{m['title']}[/]", highlight=False)
    if m["body"]:
        out.print(m["body"], highlight=False)
    for key in ("id", "kind", "status", "severity", "score", "metric", "dimension", "member", "period_start",
                "valid_from", "valid_to", "recorded_at", "closed_at", "first_seen", "last_confirmed",
                "supersedes", "superseded_by", "source", "cycle_id", "flow_run_id", "feedback"):
        if m[key] is not None:
            out.print(f"  {key}: {m[key]}", highlight=False)
    for other in m.get("linked") or []:  # one story with this one
        out.print(f"  linked: {other['id']} ({other['status']}) {other['title']}", highlight=False)
    for query in (m["evidence"] or {}).get("queries", []):
        out.print(f"  evidence: {query}", highlight=False)
    for n in (m["evidence"] or {}).get("numbers", []):  # where each number in the text comes from
        where = (f"row {n['row']}, {n['column']} of: {n['query']}" if n.get("row") else
                 f"{n['column']} of candidate {n.get('candidate_id')}" if "column" in n else lineage_text(n))
        out.print(f"  number {n['text']} = {n['value']:g}, {where}", highlight=False)
    print_history(m["history"])
