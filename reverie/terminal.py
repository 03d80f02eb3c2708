"""Plain terminal output for what must start fast (`reverie ask`, errors): rich costs ~70 ms of imports."""

from __future__ import annotations

import os
import sys
from typing import TextIO

STYLES = {"bold red": "1;31", "dim": "2"}


def styled(text: str, style: str, stream: TextIO) -> str:
    """The text in a style on a terminal that shows colour (NO_COLOR and TERM=dumb say it does not); else as it is."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb" or not stream.isatty():
        return text
    return f"\x1b[{STYLES[style]}m{text}\x1b[0m"


def print_error(message: str) -> None:
    """One line on stderr: `error: <message>`."""
    print(styled("error:", "bold red", sys.stderr), message, file=sys.stderr)
