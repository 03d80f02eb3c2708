"""The `reverie` commands: each reads the settings, calls a flow or the core, and hands its result to
reverie.cli.render (or, with --json, prints it as one JSON object on stdout)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer

from reverie.cli import render
from reverie.config import CONFIG_FILE, ConfigError, load_settings
from reverie.paths import shown
from reverie.project import scaffold
from reverie.terminal import print_error
from reverie.warehouse import no_warehouse

app = typer.Typer(help="Sleep-time compute for data teams.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
memory_app = typer.Typer(help="Read the insight memory.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
DEMO_DAYS = 90
COMMAND_WAIT_SECONDS = 10.0


def _fail(message: str, code: int = 2) -> None:
    print_error(message)
    raise typer.Exit(code)


def _settings(project_dir: Path = Path(".")):
    try:
        return load_settings(project_dir)
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Project folder.")] = Path("."),
         from_dbt: Annotated[Optional[Path], typer.Option(
             "--from-dbt", help="A dbt project's folder: its semantic models and metrics become reverie's.")] = None,
         as_json: JsonFlag = False) -> None:
    """Scaffold reverie.toml, an example model and example metrics (existing files are kept); with --from-dbt, a
    project reading that dbt project's metrics instead, listed with what reverie cannot compute."""
    try:
        payload = scaffold(directory, from_dbt)
        if from_dbt is not None:
            from reverie.flows.dbt_cycle import dbt_metrics

            settings = load_settings(directory)
            payload |= {"dbt": str(settings.dbt.project_dir), "database": _dbt_database(settings.dbt),
                        **dbt_metrics(settings)}
    except ConfigError as exc:
        _fail(str(exc))
    render.emit(payload, as_json, render.initialised)


def _dbt_database(project) -> str | None:
    """The DuckDB file the dbt project's target builds, or None when its profile does not say one."""
    from reverie.dbt_project import DbtError

    try:
        return str(project.database())
    except DbtError:
        return None


def _generate(days: int, start: date | None, seed: int | None, scale: float | None, as_json: bool) -> dict:
    from reverie.generator import generate

    settings = _settings()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("days"),
                  TimeElapsedColumn(), console=render.err, transient=True, disable=as_json) as progress:
        bar = progress.add_task("days", total=days)
        try:
            return generate(settings.landing_dir, days, start=start, seed=seed, scale=scale,
                            on_day=lambda _: progress.advance(bar))
        except ValueError as exc:
            _fail(str(exc))


@app.command(name="generate")
def generate_command(
    days: Annotated[int, typer.Option("--days", help="Days to append.")] = 30,
    start: Annotated[Optional[str], typer.Option("--start", help="First day (YYYY-MM-DD) of a new stream.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed")] = None,
    scale: Annotated[Optional[float], typer.Option("--scale", help="Volume multiplier (1 = ~4,400 events a day).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Append demo e-commerce events (day-partitioned Parquet) to the landing folder."""
    try:
        first = date.fromisoformat(start) if start else None
    except ValueError:
        _fail(f"--start {start!r} is not a date (YYYY-MM-DD)")
    payload = _generate(days, first, seed, scale, as_json)
    render.emit(payload, as_json, lambda p: render.out.print(
        f"generated {p['rows']:,} events for {p['first_day']} .. {p['last_day']} in {p['landing']} "
        f"({p['planted_events']} planted events in labels.jsonl)"))


def _locally(run: Callable[[], dict]) -> dict:
    """A local flow run, its start-up failures (Prefect's API, reverie.toml) as one line."""
    from reverie.prefect_api import PrefectUnavailable

    try:
        return run()
    except PrefectUnavailable as exc:
        _fail(str(exc), code=1)
    except ConfigError as exc:
        _fail(str(exc))


def _run_cycle(project_dir: Path, full_refresh: bool = False, prepare: Callable[[], dict] | None = None) -> dict:
    """A local sleep cycle, its start-up failures as one line."""
    from reverie.flows.local_run import run_cycle as local_run

    return _locally(lambda: local_run(project_dir, full_refresh, prepare))


def _top_memories(limit: int) -> list[dict]:
    from reverie.memory.store import list_memory

    return list_memory(_warehouse_or_fail(), status="active", limit=limit)


@app.command()
def run(full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Recompute every metric period.")] = False,
        as_json: JsonFlag = False) -> None:
    """Run one sleep cycle as a local flow run."""
    settings = _settings()
    result = _run_cycle(settings.project_dir, full_refresh)
    render.emit(result, as_json, render.print_cycle)
    if result["status"] in ("failed", "skipped"):
        raise typer.Exit(1)
    if not settings.sources:
        render.err.print(f"no sources declared in {settings.project_dir / 'reverie.toml'}: add a [sources.NAME] table "
                  "(`reverie init` writes an example)", highlight=False)
    elif result["stages"]["ingest"]["watermark"] is None:
        render.err.print("no data yet: land files where [sources.*] path points, or run `reverie generate --days 60` "
                  "for demo data", highlight=False)


@app.command()
def demo(days: Annotated[int, typer.Option("--days", help=f"Days of demo data for a new project (default {DEMO_DAYS}).")] = DEMO_DAYS,
         as_json: JsonFlag = False) -> None:
    """Set up a demo project here if there is none, land new data and run one sleep cycle."""
    from reverie.generator import read_state

    started = time.monotonic()
    try:
        setup = scaffold(Path("."))
    except ConfigError as exc:
        _fail(str(exc))
    settings = _settings()
    # a new project gets `days` of history; every later demo lands one more night
    new_days = days if read_state(settings.landing_dir) is None else 1

    def land() -> dict:  # while Prefect's API starts
        generating = time.monotonic()
        generated = _generate(new_days, None, None, None, as_json)
        return {**generated, "seconds": round(time.monotonic() - generating, 2)}

    result = _run_cycle(settings.project_dir, prepare=land)
    result["setup"] = {"project": setup["project"], "created": setup["created"], "generate": result.pop("prepared")}
    result["total_seconds"] = round(time.monotonic() - started, 2)

    render.emit(result, as_json, lambda r: render.demo_result(r, _top_memories(200)))
    if result["status"] == "failed":
        raise typer.Exit(1)


@app.command()
def retry(source: Annotated[Optional[str], typer.Argument(help="A source in reverie.toml (default: every source).")] = None,
          as_json: JsonFlag = False) -> None:
    """Mark the rejected batches to be tried again by the next cycle (after fixing the data or the declaration)."""
    from reverie.batches import retry_rejected

    declared = _settings().sources
    if source is not None and source not in declared:
        _fail(f"no source '{source}' in {CONFIG_FILE} (declared: {', '.join(declared) or 'none'})")
    marked = retry_rejected(_warehouse_or_fail(), source)

    def human(payload: dict) -> None:
        whose = f"of source '{source}' " if source else ""
        render.out.print(f"{payload['retried']} rejected batch(es) {whose}will be tried again by the next cycle", highlight=False)

    render.emit({"source": source, "retried": marked}, as_json, human)


@app.command(name="ask")
def ask(
    words: Annotated[list[str], typer.Argument(help="The question, quoted or not.")],
    no_memory: Annotated[bool, typer.Option("--no-memory", help="Answer cold, from the warehouse's SQL only "
                                                                 "(for comparison).")] = False,
    no_prepared: Annotated[bool, typer.Option("--no-prepared", help="Pass over prepared answers: memory answers "
                                                                     "(for comparison).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Answer a question from what the night prepared: a prepared answer, memory, or the warehouse cold."""
    from reverie.ask.command import ask_command

    raise typer.Exit(ask_command(words, use_memory=not no_memory, use_prepared=not no_prepared, as_json=as_json))


@app.command()
def deliver(as_json: JsonFlag = False) -> None:
    """The latest brief delivered again, with the alerts held for quiet hours or owed by a failed channel (schedule
    it when quiet hours end)."""
    from reverie.flows.local_run import run_morning_brief

    result = _locally(lambda: run_morning_brief(Path(".")))

    def human(r: dict) -> None:
        if r["deliver"] is None:
            render.out.print(r.get("error") or "no brief yet: `reverie run` (or `reverie demo`) writes one", highlight=False)
            return
        render.out.print(f"cycle {r['cycle_id']}: " + render.stage_line("deliver", r["deliver"]), highlight=False)

    render.emit(result, as_json, human)
    if result["status"] == "failed":
        raise typer.Exit(1)


@app.command()
def brief(html: Annotated[Optional[Path], typer.Option("--html", help="Write the brief as a page (with charts) to PATH.")] = None,
          open_page: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
          cycle: Annotated[Optional[str], typer.Option("--cycle", help="A cycle's brief (default: the latest).")] = None,
          as_json: JsonFlag = False) -> None:
    """The latest brief: printed in the terminal, written as a page (--html), or its items as JSON."""
    import shutil
    import webbrowser

    from rich.markdown import Markdown

    from reverie.channels.brief_file import brief_files

    settings = _settings()
    if cycle is not None and not re.fullmatch(r"[\w-]{1,80}", cycle):
        _fail(f"--cycle: {cycle!r} is not a cycle id (c20261204T020000-1a2b3c)")
    name = cycle or "latest"
    files, document = brief_files(settings.briefs_dir, cycle)
    if not files[".md"].exists():
        _fail(f"no brief {'for cycle ' + repr(cycle) if cycle else 'yet'} in {shown(str(settings.briefs_dir))}: "
              "`reverie run` (or `reverie demo`) writes one")
    page = files[".html"]
    if html is not None:
        target = html / f"brief-{document.get('cycle_id') or name}.html" if html.is_dir() else html
        try:
            shutil.copyfile(page, target)
        except OSError as exc:
            _fail(f"cannot write {target}: {exc.strerror or exc}")
        page = target
    if open_page:
        webbrowser.open(page.resolve().as_uri())
    result = {"cycle_id": document.get("cycle_id"), "project": document.get("project"),
              "data_up_to": document.get("reach"), "brief": str(files[".md"]), "page": str(page),
              "items": [*document.get("changes", []), *document.get("notes", [])],
              "key_metrics": document.get("key_metrics", []), "quality": document.get("quality", [])}

    def human(r: dict) -> None:
        if html is not None or open_page:
            render.out.print(f"the brief as a page: {page}", highlight=False)
        else:
            render.out.print(Markdown(files[".md"].read_text()), soft_wrap=False)  # wrapped at the terminal's width, not cut

    render.emit(result, as_json, human)


@app.command()
def serve() -> None:
    """Serve the project's deployments (nightly cycle, hourly refresh, reflect on events, morning brief) from one
    warm process, until Ctrl-C; needs a Prefect server (`prefect server start`)."""
    from reverie.flows.serve import ServeRefused, serve_project

    settings = _settings()
    try:
        serve_project(settings, print_line=lambda line: render.err.print(line, highlight=False))
    except ServeRefused as exc:
        _fail(str(exc), code=1)
    except KeyboardInterrupt:
        pass  # Ctrl-C; on SIGTERM Prefect's runner ends by itself
    render.err.print("stopped serving", highlight=False)


@app.command()
def mcp(http: Annotated[bool, typer.Option("--http", help="Serve streamable HTTP at http://HOST:PORT/mcp instead of "
                                                          "stdio.")] = False,
        host: Annotated[str, typer.Option("--host", help="Address to serve HTTP on; off loopback only with "
                                                         "REVERIE_MCP_TOKEN set.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port to serve HTTP on.")] = 8765,
        project: Annotated[Path, typer.Option("--project", help="The project folder, for clients that cannot set "
                                                                "where a server starts.")] = Path(".")) -> None:
    """Serve memory, metrics, the brief and ask to any agent over the Model Context Protocol (stdio by default)."""
    from reverie.mcp_server.server import Refusal, serve

    settings = _settings(project)
    try:
        serve(settings, http=http, host=host, port=port,
              print_line=lambda line: render.err.print(line, highlight=False))
    except Refusal as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


@app.command()
def stats(days: Annotated[int, typer.Option("--days", help="The last N days.")] = 30, as_json: JsonFlag = False) -> None:
    """Sleep-time cost per cycle, query-time cost per ask by path, and what the nights saved the asks."""
    from reverie.ask.stats import usage_stats

    result = usage_stats(_warehouse_or_fail(), days)
    render.emit(result, as_json, render.stats_result)


@memory_app.command("list")
def memory_list(
    status: Annotated[str, typer.Option("--status", help="active, superseded, retracted, expired or all.")] = "active",
    kind: Annotated[Optional[str], typer.Option("--kind")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List insights in memory, most severe and highest scored first."""
    from reverie.memory.store import list_memory

    items = list_memory(_warehouse_or_fail(), status=status, kind=kind, limit=limit)

    def human(payload: dict) -> None:
        for m in payload["items"]:
            render.print_item(m, f"{m['severity']} · {m['kind']} · {m['source']}")
        render.out.print(f"{len(payload['items'])} item(s)")

    render.emit({"items": items}, as_json, human)


def _warehouse_or_fail():
    """The project's warehouse for a command: it waits a little for a cycle's task to close the file, then says who
    holds it (the cycle's tasks each hold it for seconds, a command's query for less)."""
    settings = _settings()
    if not settings.warehouse.exists():
        _fail(no_warehouse(settings.warehouse))
    return replace(settings.warehouse, open_wait_seconds=COMMAND_WAIT_SECONDS)


@memory_app.command("search")
def memory_search(
    words: Annotated[list[str], typer.Argument(help="Words to look for in titles and bodies; a date (2026-02-05), "
                                                    "a month (2026-02, February, feb 2026) narrows the periods.")],
    metric: Annotated[Optional[str], typer.Option("--metric")] = None,
    kind: Annotated[Optional[str], typer.Option("--kind")] = None,
    status: Annotated[str, typer.Option("--status", help="active, superseded, retracted, expired or all.")] = "active",
    since: Annotated[Optional[str], typer.Option("--since", help="Periods from this day (YYYY-MM-DD).")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Periods up to this day (YYYY-MM-DD).")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Search memory by relevance (BM25 over title and body), within filters."""
    from reverie.memory.search import search_memory

    text = " ".join(words)
    warehouse = _warehouse_or_fail()
    try:
        first, last = (date.fromisoformat(d) if d else None for d in (since, until))
    except ValueError as exc:
        _fail(f"--since/--until: {exc}")
    items = search_memory(warehouse, text, metric=metric, kind=kind, status=status, since=first, until=last,
                          limit=limit)

    def human(payload: dict) -> None:
        for m in payload["items"]:
            render.print_item(m, f"relevance {m['relevance']:.2f} · {m['kind']} · {m['status']} · {m.get('period') or ''}")
        render.out.print(f"{len(payload['items'])} item(s)")

    render.emit({"query": text, "items": items}, as_json, human)


@memory_app.command("show")
def memory_show(memory_id: Annotated[str, typer.Argument(help="A memory id (mem-...), or a candidate's (cand-...) "
                                                               "that a note cites: the item it became.")],
                as_json: JsonFlag = False) -> None:
    """One insight, whole: evidence, provenance, feedback and its history."""
    from reverie.memory.store import show_memory

    item = show_memory(_warehouse_or_fail(), memory_id)
    if item is None:
        _fail(f"no memory item {memory_id}" if not memory_id.startswith("cand-") else
              f"no memory item came from candidate {memory_id}: it was merged into another or not kept")
    render.emit(item, as_json, render.memory_item)


@memory_app.command("history")
def memory_history_command(memory_id: Annotated[str, typer.Argument(help="A memory id (mem-...).")],
                           as_json: JsonFlag = False) -> None:
    """Every change to one insight: inserted, confirmed, superseded, expired, feedback."""
    from reverie.memory.store import memory_history

    history = memory_history(_warehouse_or_fail(), memory_id)
    if history is None:
        _fail(f"no memory item {memory_id}")
    render.emit({"id": memory_id, "history": history}, as_json, lambda p: render.print_history(p["history"]))


@memory_app.command("feedback")
def memory_feedback(
    memory_id: Annotated[str, typer.Argument(help="A memory id (mem-...).")],
    verdict: Annotated[str, typer.Argument(help="useful or noise.")],
    as_json: JsonFlag = False,
) -> None:
    """Say whether an insight was useful or noise: later ones of the same kind and subject rank accordingly."""
    from reverie.memory.store import give_feedback

    try:
        result = give_feedback(_warehouse_or_fail(), memory_id, verdict)
    except KeyError:
        _fail(f"no memory item {memory_id}")
    except ValueError as exc:
        _fail(str(exc))
    render.emit(result, as_json, lambda r: render.out.print(f"{r['id']}: {r['feedback']}", highlight=False))


@memory_app.command("export")
def memory_export(
    path: Annotated[Path, typer.Argument(help="A .jsonl or .parquet file to write.")],
    status: Annotated[str, typer.Option("--status", help="active, superseded, retracted, expired or all.")] = "all",
    as_json: JsonFlag = False,
) -> None:
    """Export memory items, every column, to JSON lines or Parquet."""
    from reverie.memory.store import export_memory

    try:
        rows = export_memory(_warehouse_or_fail(), path, status)
    except ValueError as exc:
        _fail(str(exc))
    render.emit({"path": str(path), "items": rows}, as_json,
          lambda r: render.out.print(f"{r['items']} item(s) written to {r['path']}", highlight=False))
