"""What every benchmark prints: the machine it ran on, and a table."""

from __future__ import annotations

import os
import platform


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def print_table(header: tuple, rows: list[tuple], width: int = 11) -> None:
    """Right-aligned columns separated by bars, header first."""
    for cells in (header, *rows):
        print(" | ".join(f"{c!s:>{width}}" for c in cells))
