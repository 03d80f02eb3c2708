"""Headless Chromium (Debian's package) driven over the DevTools protocol: open a page, read its DOM, screenshot it."""

from __future__ import annotations

import base64
import itertools
import json
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

from tests.helpers import processes

LISTENING = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one tab, the network off: a page that needs it fails to render, as offline."""

    def __init__(self, width: int = 1000, height: int = 1400, mobile: bool = False, offline: bool = True) -> None:
        # chromium's helper processes may still write to the profile for a moment after it exits
        self._profile = tempfile.TemporaryDirectory(prefix="reverie-chromium-", ignore_cleanup_errors=True)
        self._socket = None
        self._process = subprocess.Popen(
            [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:  # a browser that fails to start is killed with its helpers, not left behind
            port = self._port()
            target = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
            self._socket = connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=60)
            self._ids = itertools.count(1)
            self.call("Page.enable")
            self.call("Network.enable")
            self.call("Network.emulateNetworkConditions", offline=offline, latency=0, downloadThroughput=-1,
                      uploadThroughput=-1)
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=mobile)
        except BaseException:
            self.close()
            raise

    def _port(self, timeout: float = 60) -> int:
        """The DevTools port Chromium prints on stderr, read on a thread so that a silent browser cannot block."""
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in self._process.stderr:
                lines.put(line)
            lines.put(None)  # stderr closed: the browser is gone

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"chromium exited (code {self._process.wait()}) before opening its DevTools port")
            if match := LISTENING.search(line):
                return int(match.group(2))
        raise RuntimeError(f"chromium did not open its DevTools port within {timeout:.0f} s")

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and wait for its result (events in between are skipped)."""
        call_id = next(self._ids)
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        message = self._until(lambda m: m.get("id") == call_id, f"the result of {method}")
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message["result"]

    def open(self, path: Path | str) -> None:
        """Load a file (or, with the network on, a URL) and wait for its load event."""
        self.call("Page.navigate", url=path if isinstance(path, str) else path.resolve().as_uri())
        self._until(lambda m: m.get("method") == "Page.loadEventFired", f"the load event of {path}")

    def _until(self, wanted, what: str, timeout: float = 60) -> dict:
        """The first DevTools message `wanted` accepts, within `timeout` seconds in all (not per message)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = json.loads(self._socket.recv(timeout=left))
            except TimeoutError:
                break
            if wanted(message):
                return message
        raise RuntimeError(f"chromium: no {what} within {timeout:.0f} s")

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
        if self._socket is not None:
            self._socket.close()
        processes.stop_group(self._process)  # the browser and its helper processes
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
