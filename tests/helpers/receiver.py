"""A webhook receiver over real HTTP, for the channels that notify people."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "T0KEN-do-not-store-5c1f9e"  # the secret part of a webhook URL, as in Slack's or Teams' hooks


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST and answers with `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.messages: list[dict] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        self.idempotency_keys: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.paths.append(self.path)
                receiver.content_types.append(self.headers["content-type"])
                receiver.idempotency_keys.append(self.headers.get("idempotency-key"))
                receiver.messages.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/{TOKEN}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
