"""The `reverie` command's entry: a plain `reverie ask` goes straight to its answer, every other command (and an
ask with --help or an option it does not know) to the full command line, `reverie.cli`, whose typer, click and
rich cost ~150 ms of imports that an answer of 40 ms need not pay. An unexpected error reaches the user as one
line; its traceback goes to a file."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ASK_FLAGS = {"--no-memory", "--no-prepared", "--json"}


def _plain_ask(args: list[str]) -> tuple[list[str], set[str]] | None:
    """The question's words and flags of `reverie ask` with nothing but words and its flags; else None."""
    if not args or args[0] != "ask":
        return None
    words = [a for a in args[1:] if a not in ASK_FLAGS]
    if not words or any(w.startswith("-") for w in words):
        return None
    return words, set(args[1:]) & ASK_FLAGS


def _run(args: list[str]) -> None:
    if (plain := _plain_ask(args)) is not None:
        from reverie.ask.command import ask_command

        words, flags = plain
        sys.exit(ask_command(words, use_memory="--no-memory" not in flags, use_prepared="--no-prepared" not in flags,
                             as_json="--json" in flags))
    from reverie.cli.commands import app

    app()


def main() -> None:
    """The `reverie` command."""
    from reverie.config import CONFIG_FILE
    from reverie.terminal import print_error
    from reverie.warehouse import WarehouseBusy

    try:
        _run(sys.argv[1:])
    except KeyboardInterrupt:
        sys.exit(130)
    except WarehouseBusy as exc:  # says who holds it and what to do: nothing more to log
        print_error(str(exc))
        sys.exit(1)
    except Exception as exc:  # typer has handled usage errors and exits by now
        import tempfile
        import traceback

        folder = Path(".reverie/logs") if Path(CONFIG_FILE).exists() else Path(tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"reverie-error-{time.strftime('%Y%m%dT%H%M%S')}.log"
        log.write_text("".join(traceback.format_exception(exc)))
        print_error(f"{type(exc).__name__}: {exc} (details in {log})")
        sys.exit(1)
