"""One JSON message per cycle, POSTed to a URL kept in an environment variable."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import ClassVar

from reverie.channels import Brief, Channel, ChannelError, notification
from reverie.options import OptionError
from reverie.secrets import unlogged

ENVIRONMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class WebhookOptions:
    """[deliver.webhook] in reverie.toml."""
    # A webhook URL usually is its own credential (Slack, Teams, ntfy), so reverie.toml names where to find it.
    url_env: str = "REVERIE_WEBHOOK_URL"
    timeout_seconds: float = 10.0
    top_items: int = 5  # alerts listed in the message, most severe first; the brief has them all
    AT_LEAST: ClassVar[dict] = {"timeout_seconds": 0.1, "top_items": 1}

    def __post_init__(self) -> None:
        if not ENVIRONMENT_NAME.match(self.url_env):  # the value is not echoed: it may be the URL itself
            raise OptionError("url_env: not the name of an environment variable "
                              "(put the URL in a variable, e.g. REVERIE_WEBHOOK_URL, and name it here)")


def message(brief: Brief, top_items: int) -> dict:
    """The JSON body: a title and a plain-text summary (chat webhooks show `text`), the top alerts (updates with what
    they were), the brief's page."""
    title, text = notification(brief, top_items)
    top = brief.alerts[:top_items]
    return {"title": title, "text": text, "project": brief.project, "cycle_id": brief.cycle_id,
            "brief": str(brief.page), "more": len(brief.alerts) - len(top),
            "items": [{"id": alert.id, "kind": alert.kind, "title": alert.title, "severity": alert.severity,
                       "update": alert.is_update, "was": alert.was} for alert in top]}


class Webhook(Channel):
    notifies = True
    Options = WebhookOptions

    def send(self, brief: Brief) -> str:
        """POST the message; returns the URL's host (and port), never its path or query, which may hold a token.

        The cycle id goes as the Idempotency-Key header: a cycle killed after sending and taken up again sends its
        message again (at least once), and the receiver can tell it is the same one."""
        # imported here: reading reverie.toml (every CLI command) should not pay httpx's import
        import httpx

        options: WebhookOptions = self.options
        url = os.environ.get(options.url_env, "").strip()
        if not url:
            raise ChannelError(f"environment variable {options.url_env} is not set ([deliver.webhook] url_env)")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ChannelError(f"environment variable {options.url_env} does not hold an http(s) URL")
        target = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
        try:
            with unlogged([str(parsed)], ("httpx",)):  # as httpx writes it in its log line
                response = httpx.post(parsed, json=message(brief, options.top_items), timeout=options.timeout_seconds,
                                      headers={"Idempotency-Key": brief.cycle_id})
        except httpx.TimeoutException as exc:  # the exception's text may quote the URL: only its type is kept
            raise ChannelError(f"{target} did not answer within {options.timeout_seconds:g} s "
                               f"({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise ChannelError(f"cannot reach {target} ({type(exc).__name__})") from None
        if not response.is_success:
            raise ChannelError(f"{target} answered HTTP {response.status_code}")
        return target
