"""An OpenAI-compatible endpoint that fails the way real ones do, at the HTTP and socket level: the real `openai`
client talks to it."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time

BODY = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "faulty",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}


def _with_choices(choices) -> bytes:
    return json.dumps({**BODY, "choices": choices}).encode()


_CUT_TOOL_CALL = [{"index": 0, "finish_reason": "tool_calls", "message": {
    "role": "assistant", "content": None, "tool_calls": [{"id": "call-1", "type": "function", "function": {
        "name": "write_insight", "arguments": '{"kind": "risk", "severity": "critical", "title": "Revenue coll'}}]}}]
# what each fault sends back: (status, content type, body, then what the connection does)
FAULTS = {
    "timeout": None,  # reads the request and never answers
    "http 500": (500, "application/json", b'{"error": {"message": "internal error", "type": "server_error"}}', "end"),
    "http 503": (503, "text/html", b"<html><body>503 Service Unavailable</body></html>", "end"),
    "http 429": (429, "application/json", b'{"error": {"message": "rate limited", "type": "rate_limit"}}', "end"),
    "truncated json": (200, "application/json", json.dumps(BODY).encode()[:60], "end"),
    "html instead of json": (200, "text/html", b"<html><body>Bad gateway</body></html>", "end"),
    "empty choices": (200, "application/json", _with_choices([]), "end"),
    "null message": (200, "application/json", _with_choices([{"index": 0, "message": None,
                                                              "finish_reason": "stop"}]), "end"),
    "tool call cut short": (200, "application/json", _with_choices(_CUT_TOOL_CALL), "end"),
    "hangs mid-body": (200, "application/json", json.dumps(BODY).encode(), "hang"),
    "closes mid-body": (200, "application/json", json.dumps(BODY).encode(), "close"),
    "closes the connection": "close",  # reads the request and closes without a word
}


class FaultyLLM:
    """Answers every request with `fault` (one of FAULTS); counts the requests."""

    def __init__(self) -> None:
        self.fault = "http 500"
        self.requests = 0
        self._stop = threading.Event()
        faulty = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                connection: socket.socket = self.request
                _read_request(connection)
                faulty.requests += 1
                answer = FAULTS[faulty.fault]
                if answer is None:
                    faulty._stop.wait(60)
                    return
                if answer == "close":
                    return
                status, kind, body, then = answer
                declared = len(body)
                sent = body if then == "end" else body[: len(body) // 2]  # the rest never comes
                connection.sendall(f"HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ncontent-length: {declared}\r\n"
                                   f"connection: close\r\n\r\n".encode() + sent)
                if then == "hang":
                    faulty._stop.wait(60)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


def _read_request(connection: socket.socket) -> None:
    """Read one HTTP request (headers and a content-length body)."""
    data = b""
    connection.settimeout(10)
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    deadline = time.monotonic() + 10
    while len(body) < length and time.monotonic() < deadline:
        chunk = connection.recv(65536)
        if not chunk:
            return
        body += chunk
