"""A scripted OpenAI-compatible HTTP server: the real `openai` client talks to it over real HTTP."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A step gets the parsed request body and returns a chat.completion message dict, or ("status", code).
Step = Callable[[dict], dict | tuple]
CANDIDATE_LINE = re.compile(r"- (c\d+): (\w+) \(([^)]*)\) on (\S+): observed ([-\d.,%]+), expected ([-\d.,%]+), "
                            r"change ([-+\d.]+)%")


def tool_call(name: str, arguments: dict | str) -> dict:
    """An assistant message that calls one tool."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": f"call-{name}-{time.monotonic_ns()}", "type": "function",
                            "function": {"name": name, "arguments": args}}]}


def candidates_in(request: dict) -> list[dict]:
    """The candidates reverie showed the model, parsed back from its user message."""
    text = "\n".join(m.get("content") or "" for m in request["messages"] if m["role"] == "user")
    return [dict(zip(("id", "metric", "slice", "period", "observed", "expected", "change"), m))
            for m in CANDIDATE_LINE.findall(text)]


def tool_results(request: dict) -> list[str]:
    """What reverie answered to the model's tool calls so far."""
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def grounded_insight(request: dict) -> dict:
    """Quotes the observed value and change of the top candidate, as reverie showed them, naming its slice."""
    top = candidates_in(request)[0]
    return tool_call("write_insight", {
        "kind": "risk", "severity": "warning", "candidate_ids": [top["id"]],
        "title": f"{top['metric']} ({top['slice']}) moved {top['change']}% on {top['period']}",
        "body": f"It was {top['observed']} against an expected {top['expected']}. Worth a look.",
    })


def finish(request: dict) -> dict:
    """The analyst's last step: it has nothing (more) to add."""
    return tool_call("finish", {"summary": "done"})


class ScriptedLLM:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests.clear()
        self.headers.clear()

    def start(self) -> "ScriptedLLM":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                if not server.steps:
                    reply = {"role": "assistant", "content": "nothing more to say"}
                else:
                    reply = server.steps.pop(0)(body)
                if isinstance(reply, tuple):
                    self._send(reply[1], {"error": {"message": "scripted failure", "type": "server_error"}})
                    return
                finish = "tool_calls" if reply.get("tool_calls") else "stop"
                self._send(200, {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "scripted"),
                    "choices": [{"index": 0, "message": reply, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                })

        return Handler
