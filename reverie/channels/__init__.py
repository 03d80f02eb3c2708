"""Delivery channels: where a cycle's brief goes. A channel is one module here plus one line in CHANNELS."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class BriefItem:
    """One insight in the brief, as a channel may show it."""
    id: str
    kind: str
    title: str
    severity: str
    score: float | None
    fingerprint: str


@dataclass(frozen=True)
class Alert:
    """An insight a notifying channel sends this cycle; `was` is the earlier words of its subject when it is an
    update (a new value of something already sent)."""
    id: str
    kind: str
    title: str
    severity: str
    fingerprint: str
    was: str | None = None

    @property
    def is_update(self) -> bool:
        return self.was is not None


@dataclass(frozen=True)
class Brief:
    """What a cycle delivers: the brief as markdown, as a page and as data, the insights in it (most severe first),
    and the alerts owed to the channel it is handed to."""
    project: str
    cycle_id: str
    markdown: str
    items: tuple[BriefItem, ...]
    briefs_dir: Path
    html: str = ""
    document: dict = field(default_factory=dict)
    alerts: tuple[Alert, ...] = ()

    @property
    def path(self) -> Path:
        """Where the brief_file channel writes this brief's markdown."""
        return self.briefs_dir / f"{self.cycle_id}.md"

    @property
    def page(self) -> Path:
        """Where the brief_file channel writes this brief as a page, and where every notification points."""
        return self.path.with_suffix(".html")

    @property
    def fingerprints(self) -> list[str]:
        return [item.fingerprint for item in self.items]


def notification(brief: Brief, top_items: int) -> tuple[str, str]:
    """A notification's title and markdown body: the top alerts (updates say what they were), ids, the brief's page."""
    top = brief.alerts[:top_items]
    updates = sum(alert.is_update for alert in brief.alerts)
    counted = f"{len(brief.alerts) - updates} new" + (f", {updates} updated" if updates else "")
    title = f"reverie — {brief.project}: {counted}"
    lines = []
    for alert in top:
        was = f" (was: {alert.was})" if alert.is_update else ""
        lines.append(f"- {'update · ' if alert.is_update else ''}**{alert.severity}** {alert.title}{was} `{alert.id}`")
    if len(brief.alerts) > len(top):
        lines.append(f"- … and {len(brief.alerts) - len(top)} more in the brief")
    lines.append(f"\nThe brief: {brief.page}")
    return title, "\n".join(lines)


class ChannelError(RuntimeError):
    """A channel that could not deliver; the message says why and is safe to log: no URL, no token."""


class PartlySent(ChannelError):
    """Some of a channel's recipients got the message and some did not: recorded as sent, and as an error."""

    def __init__(self, target: str, error: str) -> None:
        super().__init__(error)
        self.target = target


class UnknownChannel(ValueError):
    """A channel name that is not in CHANNELS."""


@dataclass(frozen=True)
class NoOptions:
    """The options of a channel that has none."""


class Channel(ABC):
    """Somewhere a brief goes: a file, the Prefect UI, a webhook."""
    # A notification reaches people: it is handed only the alerts it owes (brief.alerts), is not called when there
    # are none, and counts in the deliver stage's `sent`; a file or an artifact holds the whole brief, every cycle.
    notifies: ClassVar[bool] = False
    # The options of [deliver.<name>] in reverie.toml: a frozen dataclass whose fields have defaults; AT_LEAST and
    # AT_MOST bound its numbers, and __post_init__ raises OptionError for values that cannot work.
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: object | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @abstractmethod
    def send(self, brief: Brief) -> str:
        """Deliver the brief; returns the target recorded in `deliveries`, with no secret in it.

        Raises ChannelError when it cannot: a channel that holds a secret turns every error into one whose
        message does not contain it.
        """


# The channel modules build on the classes above, so they are imported after them.
from reverie.channels.apprise_urls import AppriseUrls  # noqa: E402
from reverie.channels.brief_file import BriefFile  # noqa: E402
from reverie.channels.prefect_artifact import PrefectArtifact  # noqa: E402
from reverie.channels.prefect_block import PrefectBlock  # noqa: E402
from reverie.channels.webhook import Webhook  # noqa: E402

CHANNELS: dict[str, type[Channel]] = {
    "brief_file": BriefFile,
    "prefect_artifact": PrefectArtifact,
    "apprise": AppriseUrls,
    "prefect_block": PrefectBlock,
    "webhook": Webhook,
}


def channel_class(name: str) -> type[Channel]:
    """The channel registered under `name`; an unknown name raises UnknownChannel listing the known ones."""
    if name not in CHANNELS:
        # a name that is no word is not echoed: it may be a webhook URL, which belongs in an environment variable
        shown = repr(name) if re.fullmatch(r"[\w-]{1,40}", name) else "an entry"
        raise UnknownChannel(f"channels: {shown} is not one of {', '.join(CHANNELS)}")
    return CHANNELS[name]


def build_channel(name: str, options: object | None = None) -> Channel:
    """The channel `name` with its options from [deliver.<name>] (its defaults when None)."""
    return channel_class(name)(options)
