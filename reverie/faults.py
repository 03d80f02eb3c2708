"""Fault points: named places where a test can stop reverie dead, to prove that a crash there loses nothing.

With REVERIE_FAULT_POINT set to a place's name, reverie announces on stderr that it got there and
then waits forever, so a test kills the process exactly there — not after a sleep that hopes. With
REVERIE_FAULT_RESUME=stdin it waits for a line on stdin instead and goes on: the test changes the world
there (fills the disk, say) and lets the write meet it.
"""

from __future__ import annotations

import os
import sys
import time

VARIABLE = "REVERIE_FAULT_POINT"
RESUME = "REVERIE_FAULT_RESUME"


def fault_point(name: str) -> None:
    """Block here if REVERIE_FAULT_POINT names this place (announced on stderr first), forever or until a line
    arrives on stdin (REVERIE_FAULT_RESUME=stdin); else nothing."""
    if os.environ.get(VARIABLE) != name:
        return
    print(f"reverie: fault point reached: {name}", file=sys.stderr, flush=True)
    if os.environ.get(RESUME) == "stdin":
        sys.stdin.readline()
        return
    while True:
        time.sleep(60)
