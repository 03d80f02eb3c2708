"""`reverie mcp`: what the night prepared, served to any agent over the Model Context Protocol (the official SDK),
on stdio for desktop and IDE clients or streamable HTTP for a shared deployment. It reads the last finished
cycle's snapshot only: it never waits for a cycle, never starts Prefect, and writes nothing but the ask ledger."""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
from importlib.metadata import version
from typing import Annotated, Literal

from pydantic import Field

from reverie.config import Settings
from reverie.mcp_server import tools

TOKEN_VARIABLE = "REVERIE_MCP_TOKEN"
INSTRUCTIONS = """reverie holds a data team's BI metrics and the insights its nightly analysis verified (memory).
Prefer `ask` for a business question: it answers from answers prepared overnight, or computes one from the
metrics, and declines what it cannot answer exactly. Use `list_metrics` to learn the metrics, `metric_history` for
a metric's values over time with its usual range, `search_memory` and `get_item` for what changed and why, and
`latest_brief` for the morning's summary. Every number comes with the metric, slice and period it belongs to, or
the id of the memory item it comes from: cite those ids, and say how fresh the data is (`data_through`)."""


PYDANTIC_ERROR = re.compile(r"^(\S[^\n]*)\n  ([^\n]+?)(?: \[type=[^\]]*\])?$", re.MULTILINE)


def one_line(text: str) -> str:
    """A tool's error as one line: the SDK's argument errors (pydantic's, over several lines) as `field: what`."""
    head, _, rest = text.partition(": ")
    if " validation error" in rest.split("\n", 1)[0]:
        problems = [f"{field}: {problem}" for field, problem in PYDANTIC_ERROR.findall(rest)]
        return f"{head}: bad arguments: {'; '.join(problems)}"
    return " ".join(text.split())


async def errors_in_one_line(ctx, call_next):
    """Middleware: every failed tool call's text in one line an agent can act on (results arrive serialized)."""
    result = await call_next(ctx)
    if isinstance(result, dict) and result.get("isError"):
        result = {**result, "content": [{**c, "text": one_line(c["text"])} if c.get("type") == "text" else c
                                        for c in result.get("content", [])]}
    return result


class Refusal(Exception):
    """A server that cannot start as asked; the message says why in one line."""


def build_server(settings: Settings):
    """The MCP server for one project: its tools, resources and prompt."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ResourceError, ToolError
    from mcp_types import ToolAnnotations

    server = MCPServer("reverie", title=f"reverie: {settings.name}", instructions=INSTRUCTIONS,
                       version=version("reverie"), log_level="WARNING", middleware=[errors_in_one_line])
    reading = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    def served(call) -> str:
        """A tool's result as compact JSON text (what an agent reads, in fewer tokens than indented), or its refusal."""
        try:
            result = call()
        except tools.Refused as exc:
            raise ToolError(str(exc)) from None
        return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
                 structured_output=False)
    def ask(question: Annotated[str, Field(description="A business question in plain words, e.g. 'what was revenue "
                                                      "last week?' or 'which channel had the most orders in March?'",
                                           min_length=1, max_length=500)]) -> str:
        """Answer a business question the way `reverie ask` does: a prepared answer, one computed from the metrics, or
        from memory; a question it cannot answer exactly is declined with what can be asked instead. Returns the
        answer, the path that answered, how the question was understood (metric, slice, period), the memory ids it
        cites, and `data_through` (the newest complete day). The ask is recorded in the project's ledger."""
        return served(lambda: tools.ask(settings, question))

    @server.tool(annotations=reading, structured_output=False)
    def search_memory(
        query: Annotated[str, Field(description="Words to look for in the insights' titles and bodies; a date "
                                               "(2026-02-05) or a month (2026-02, February) narrows the periods. "
                                               "Empty: every item within the filters.", max_length=500)] = "",
        metric: Annotated[str | None, Field(description="Only items about this metric (see list_metrics).")] = None,
        dimension: Annotated[str | None, Field(description="Only items about this dimension, e.g. 'channel'; "
                                                          "'overall' for the whole business.")] = None,
        member: Annotated[str | None, Field(description="Only items about this member of a dimension, e.g. 'DE'.")] = None,
        kind: Annotated[str | None, Field(description="Only items of this kind, e.g. 'unusual_change', 'trend_change', "
                                                     "'record', 'risk'; 'prepared_answer' for prepared answers.")] = None,
        severity: Annotated[Literal["info", "warning", "critical"] | None, Field(description="Only items this severe.")] = None,
        since: Annotated[str | None, Field(description="Only items about periods from this day (YYYY-MM-DD).")] = None,
        until: Annotated[str | None, Field(description="Only items about periods up to this day (YYYY-MM-DD).")] = None,
        status: Annotated[Literal["active", "superseded", "retracted", "expired", "all"],
                          Field(description="active (default): what holds now.")] = "active",
        limit: Annotated[int, Field(description="At most this many items.", ge=1, le=tools.MOST_ITEMS)] = 10,
    ) -> str:
        """Search the verified insights in memory by relevance, within filters. Each item has its id (cite it), kind,
        severity, title, body, metric, slice (dimension and member) and period; `get_item` shows one whole."""
        return served(lambda: tools.search_memory(settings, query, metric, dimension, member, kind, severity, since,
                                                  until, status, limit))

    @server.tool(annotations=reading, structured_output=False)
    def get_item(item_id: Annotated[str, Field(description="A memory id (mem-…) from search_memory, ask or the brief.",
                                               min_length=1, max_length=80)]) -> str:
        """One memory item whole: its text, the evidence it was verified against (values and the queries behind them),
        where it came from (detector or analyst, cycle, flow run), its status and every change to it."""
        return served(lambda: tools.get_item(settings, item_id))

    @server.tool(annotations=reading, structured_output=False)
    def metric_history(
        metric: Annotated[str, Field(description="A metric's name (see list_metrics).", min_length=1)],
        grain: Annotated[Literal["day", "week", "month"], Field(description="Period length.")] = "day",
        dimension: Annotated[str, Field(description="'overall' (default) or one of the metric's dimensions.")] = "overall",
        member: Annotated[str, Field(description="The member of the dimension, e.g. 'DE' (ignored for overall).")] = "all",
        since: Annotated[str | None, Field(description="First period from this day (YYYY-MM-DD).")] = None,
        until: Annotated[str | None, Field(description="Last period up to this day (YYYY-MM-DD).")] = None,
        last: Annotated[int | None, Field(description="At most this many periods, the newest (default 30 days, 13 "
                                                      "weeks, 12 months).", ge=1, le=tools.MOST_PERIODS)] = None,
    ) -> str:
        """A metric's values at a grain for one slice, oldest first: each period's start, value, whether it is
        complete and the rows behind it; with the usual range (the middle 80% of the complete values shown)."""
        return served(lambda: tools.metric_history(settings, metric, grain, dimension, member, since, until, last))

    @server.tool(annotations=reading, structured_output=False)
    def list_metrics() -> str:
        """Every metric: its description, how it aggregates, which direction is good, its grains and dimensions, where
        it is declared, and its value on the newest complete day."""
        return served(lambda: tools.list_metrics(settings))

    @server.tool(annotations=reading, structured_output=False)
    def latest_brief() -> str:
        """The latest morning brief (markdown): what changed, risks flagged, key metrics and the data's quality."""
        return served(lambda: tools.latest_brief(settings))

    def read(call):
        try:
            return call()
        except tools.Refused as exc:
            raise ResourceError(str(exc)) from None

    @server.resource("reverie://brief/latest", name="latest brief", mime_type="text/markdown")
    def brief_resource() -> str:
        """The latest morning brief."""
        return read(lambda: tools.latest_brief(settings))

    @server.resource("reverie://metrics/{name}", name="metric definition", mime_type="application/json")
    def metric_resource(name: str) -> dict:
        """One metric's definition, grains, dimensions and latest value."""
        return read(lambda: tools.metric_definition(settings, name))

    @server.resource("reverie://memory/{item_id}", name="memory item", mime_type="application/json")
    def item_resource(item_id: str) -> dict:
        """One memory item whole, with its evidence and history."""
        return read(lambda: tools.get_item(settings, item_id))

    @server.prompt(name="use_reverie", description="How to answer business questions with reverie's tools.")
    def use_reverie(question: Annotated[str, Field(description="The question to answer.")] = "") -> str:
        asked = f"\n\nThe question: {question}" if question else ""
        return (INSTRUCTIONS + "\n\nCall `ask` first with the question in plain words. If it answers, give that "
                "answer with the period it names, `data_through` and the cited ids. If it declines, say so and "
                "offer what it says can be asked; do not work a number out yourself from `metric_history` unless "
                "the user asks you to, and then name the metric, slice and periods you used." + asked)

    return server


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _with_token(app, token: str):
    """The app behind a bearer token: a request without it is refused (401) before the app sees it."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                body = b'{"error": "unauthorized: send the token in REVERIE_MCP_TOKEN as \\"Authorization: Bearer ...\\""}'
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="reverie"'),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def serve(settings: Settings, http: bool = False, host: str = "127.0.0.1", port: int = 8765,
          print_line=print) -> None:
    """Serve until the client closes stdio, or until Ctrl-C/SIGTERM over HTTP; off loopback only with a token."""
    server = build_server(settings)
    if not http:
        server.run("stdio")
        return
    import uvicorn

    token = os.environ.get(TOKEN_VARIABLE) or None
    if token is None and not _loopback(host):
        raise Refusal(f"serving on {host} (not loopback) needs a token: set {TOKEN_VARIABLE}, and give clients "
                      "\"Authorization: Bearer <token>\"")
    app = server.streamable_http_app(host=host)
    app = _with_token(app, token) if token else app
    print_line(f"reverie mcp: http://{host}:{port}/mcp ({'a bearer token is required' if token else 'no token'})")
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
