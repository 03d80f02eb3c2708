"""Fault points: named places where a test can stop reverie dead, to prove that a crash there loses nothing.

With REVERIE_FAULT_POINT set to a place's name, reverie announces on stderr that it got there and
then waits forever, so a test kills the process exactly there — not after a sleep that hopes.
"""

from __future__ import annotations

import os
import sys
import time

VARIABLE = "REVERIE_FAULT_POINT"


def fault_point(name: str) -> None:
    """Block forever here if REVERIE_FAULT_POINT names this place (announced on stderr first); else nothing."""
    if os.environ.get(VARIABLE) != name:
        return
    print(f"reverie: fault point reached: {name}", file=sys.stderr, flush=True)
    while True:
        time.sleep(60)
