"""Alerts through a Prefect notification block saved on the Prefect server (Slack, Teams, email, custom webhook)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from reverie.channels import Brief, Channel, ChannelError, notification
from reverie.options import OptionError

BLOCK_NAME = re.compile(r"^[a-z0-9-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class PrefectBlockOptions:
    """[deliver.prefect_block] in reverie.toml."""
    # The block's type slug and name as `prefect block ls` shows them, e.g. "slack-webhook/data-alerts"; its URL
    # and token stay in Prefect, which keeps them secret.
    block: str = ""
    top_items: int = 5  # alerts listed in the message, most severe first; the brief has them all
    AT_LEAST: ClassVar[dict] = {"top_items": 1}

    def __post_init__(self) -> None:
        if self.block and not BLOCK_NAME.match(self.block):
            raise OptionError(f"block = {self.block!r}: must read <block-type-slug>/<name>, "
                              "e.g. \"slack-webhook/data-alerts\" (see `prefect block ls`)")


class PrefectBlock(Channel):
    notifies = True
    Options = PrefectBlockOptions

    def send(self, brief: Brief) -> str:
        """Load the block and notify through it; returns the block's name."""
        # imported here: reading reverie.toml (every CLI command) should not pay Prefect's import
        from prefect.blocks.abstract import NotificationBlock, NotificationError
        from prefect.blocks.core import Block

        options: PrefectBlockOptions = self.options
        if not options.block:
            raise ChannelError("[deliver.prefect_block] block is not set (e.g. \"slack-webhook/data-alerts\")")
        try:
            block = Block.load(options.block)
        except (ValueError, KeyError) as exc:  # Prefect says which part was not found; a block name is no secret
            raise ChannelError(f"cannot load block {options.block!r}: {str(exc).splitlines()[0][:200]}") from None
        if not isinstance(block, NotificationBlock):
            raise ChannelError(f"block {options.block!r} is a {type(block).__name__}, not a notification block")
        title, body = notification(brief, options.top_items)
        try:
            with block.raise_on_failure():
                block.notify(body=body, subject=title)
        except NotificationError:
            raise ChannelError(f"block {options.block!r} did not deliver") from None
        except Exception as exc:  # an HTTP error's text quotes the block's URL: only its type and status are kept
            status = getattr(getattr(exc, "response", None), "status_code", None)
            raise ChannelError(f"block {options.block!r} did not deliver ({type(exc).__name__}"
                               + (f", HTTP {status}" if status else "") + ")") from None
        return options.block
