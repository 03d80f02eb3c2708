"""Delivery channels: where a cycle's brief goes. A channel is one module here plus one line in CHANNELS."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
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
class Brief:
    """What a cycle delivers: the brief's markdown and the insights in it, most severe first."""
    project: str
    cycle_id: str
    markdown: str
    items: tuple[BriefItem, ...]
    briefs_dir: Path

    @property
    def path(self) -> Path:
        """Where the brief_file channel writes this brief, and where every other channel points."""
        return self.briefs_dir / f"{self.cycle_id}.md"

    @property
    def fingerprints(self) -> list[str]:
        return [item.fingerprint for item in self.items]


class ChannelError(RuntimeError):
    """A channel that could not deliver; the message says why and is safe to log: no URL, no token."""


class UnknownChannel(ValueError):
    """A channel name that is not in CHANNELS."""


@dataclass(frozen=True)
class NoOptions:
    """The options of a channel that has none."""


class Channel(ABC):
    """Somewhere a brief goes: a file, the Prefect UI, a webhook."""
    # A notification reaches people and counts in the deliver stage's `sent`; a file or an artifact waits to be read.
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
from reverie.channels.brief_file import BriefFile  # noqa: E402
from reverie.channels.prefect_artifact import PrefectArtifact  # noqa: E402
from reverie.channels.webhook import Webhook  # noqa: E402

CHANNELS: dict[str, type[Channel]] = {
    "brief_file": BriefFile,
    "prefect_artifact": PrefectArtifact,
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
