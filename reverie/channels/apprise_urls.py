"""Alerts through Apprise: Slack, Teams, email, Discord, ntfy, webhooks and ~100 more, one URL each."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import ClassVar

from reverie.channels import Brief, Channel, ChannelError, PartlySent, notification
from reverie.channels.webhook import ENVIRONMENT_NAME
from reverie.options import OptionError
from reverie.secrets import redacted, unlogged, url_secrets

# Apprise, and requests/urllib3 under most of its services, log a request's URL at DEBUG
HTTP_LOGGERS = ("apprise", "urllib3.connectionpool", "requests")
NOTIFY_TYPE = {"critical": "failure", "warning": "warning", "info": "info"}


@dataclass(frozen=True)
class AppriseOptions:
    """[deliver.apprise] in reverie.toml."""
    # Apprise URLs carry their tokens (slack://T../B../secret): keep them in the environment variable named here,
    # several separated by spaces or commas; `urls` in reverie.toml suits URLs without a secret (a local ntfy).
    urls_env: str = "REVERIE_APPRISE_URLS"
    urls: list[str] = field(default_factory=list)
    top_items: int = 5  # alerts listed in the message, most severe first; the brief has them all
    AT_LEAST: ClassVar[dict] = {"top_items": 1}

    def __post_init__(self) -> None:
        if not ENVIRONMENT_NAME.match(self.urls_env):  # the value is not echoed: it may be a URL itself
            raise OptionError("urls_env: not the name of an environment variable "
                              "(put the URLs in a variable, e.g. REVERIE_APPRISE_URLS, and name it here)")
        if not all(isinstance(url, str) for url in self.urls):
            raise OptionError("urls: must be a list of Apprise URLs (text)")


class AppriseUrls(Channel):
    notifies = True
    Options = AppriseOptions

    def urls(self) -> list[str]:
        options: AppriseOptions = self.options
        listed = re.split(r"[\s,]+", os.environ.get(options.urls_env, "").strip())
        return [url for url in [*options.urls, *listed] if url]

    def send(self, brief: Brief) -> str:
        """Notify every URL; returns the services reached ("JSON (URL 1)"), never a URL, which may hold a token.

        Some URLs failing while others delivered still counts as sent (the alerts reached people, and sending
        them again would repeat them to the others); the failures are in the error all the same."""
        # imported here: reading reverie.toml (every CLI command) should not pay Apprise's import
        import apprise

        options: AppriseOptions = self.options
        urls = self.urls()
        if not urls:
            raise ChannelError(f"no Apprise URL: set the environment variable {options.urls_env} "
                               "([deliver.apprise] urls_env) or [deliver.apprise] urls")
        title, body = notification(brief, options.top_items)
        severest = brief.alerts[0].severity if brief.alerts else "info"
        reached, failed = [], []
        for number, url in enumerate(urls, start=1):
            secrets = url_secrets(url, service=True)
            notifier = apprise.Apprise()
            with unlogged(secrets, HTTP_LOGGERS):
                if not notifier.add(url):
                    failed.append(f"URL {number} is not an Apprise URL")
                    continue
                service = f"{notifier[0].service_name} (URL {number})"
                with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
                    delivered = notifier.notify(body=body, title=title, notify_type=NOTIFY_TYPE[severest],
                                                body_format=apprise.NotifyFormat.MARKDOWN)
            if delivered:
                reached.append(service)
            else:
                said = re.sub(r"\s+", " ", redacted(captured.getvalue(), secrets)).strip()
                failed.append(f"{service} did not deliver" + (f": {said[:300]}" if said else ""))
        if failed and not reached:
            raise ChannelError("; ".join(failed))
        if failed:
            raise PartlySent(", ".join(reached), "; ".join(failed))
        return ", ".join(reached)

