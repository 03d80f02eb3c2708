"""Headless Chromium (Debian's package) driven over the DevTools protocol: open a page, read its DOM, screenshot it."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

LISTENING = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


needs_chromium = pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"),  # CI installs it (.ci/run): there a missing one fails
    reason="headless Chromium is not installed (apt-get install chromium)")


class Browser:
    """One headless Chromium with one tab, the network off: a page that needs it fails to render, as offline."""

    def __init__(self, width: int = 1000, height: int = 1400, mobile: bool = False, offline: bool = True) -> None:
        # chromium's helper processes may still write to the profile for a moment after it exits
        self._profile = tempfile.TemporaryDirectory(prefix="reverie-chromium-", ignore_cleanup_errors=True)
        self._process = subprocess.Popen(
            [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        port = self._port()
        target = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
        self._socket = connect(target["webSocketDebuggerUrl"], max_size=None)
        self._ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Network.enable")
        self.call("Network.emulateNetworkConditions", offline=offline, latency=0, downloadThroughput=-1,
                  uploadThroughput=-1)
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=mobile)

    def _port(self) -> int:
        deadline = time.monotonic() + 60
        for line in self._process.stderr:
            match = LISTENING.search(line)
            if match:
                return int(match.group(2))
            if time.monotonic() > deadline:
                break
        raise RuntimeError("chromium did not open its DevTools port")

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and wait for its result (events in between are skipped)."""
        call_id = next(self._ids)
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def open(self, path: Path | str) -> None:
        """Load a file (or, with the network on, a URL) and wait for its load event."""
        self.call("Page.navigate", url=path if isinstance(path, str) else path.resolve().as_uri())
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("method") == "Page.loadEventFired":
                return

    def wait_for_text(self, text: str, timeout: float = 60) -> None:
        """Wait until the page's text contains `text` (a page a script renders after its load event)."""
        deadline = time.monotonic() + timeout
        while text not in (shown := self.evaluate("document.body ? document.body.innerText : ''") or ""):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on the page after {timeout} s; it reads: {shown[:1500]!r}")
            time.sleep(0.5)

    def evaluate(self, expression: str):
        """A JavaScript expression's value, returned by value (JSON)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"]["text"])
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """The whole page, not only the window, as PNG."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._socket.close()
        os.killpg(self._process.pid, signal.SIGTERM)  # the browser and its helper processes
        self._process.wait(timeout=30)
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
