"""What `reverie ask` prints: the answer and one line of how it was found, or one line of error. The full command
line and the fast entry (`reverie.main`) both call it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from reverie.terminal import print_error, styled


def ask_command(words: list[str], use_memory: bool, use_prepared: bool, as_json: bool) -> int:
    """Answer the question the words make and print it; the exit code (2: it could not be asked)."""
    from reverie.ask.route import AskError, ask
    from reverie.config import ConfigError, load_settings
    from reverie.warehouse import no_warehouse

    try:
        settings = load_settings(Path("."))
        if not settings.warehouse.exists():
            raise AskError(no_warehouse(settings.warehouse))
        result = ask(settings, " ".join(words), use_memory=use_memory, use_prepared=use_prepared)
    except (ConfigError, AskError) as exc:
        print_error(str(exc))
        return 2
    if as_json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
        return 0
    cited = f" · cites {', '.join(result['cited'])}" if result["cited"] else ""
    through = f" · data through {result['data_through']}" if result.get("data_through") else ""
    print(result["answer"])
    print(styled(f"{result['path']}{cited}{through} · {result['prompt_tokens']:,}+{result['completion_tokens']:,} "
                 f"tokens · {result['seconds']:.2f} s", "dim", sys.stdout))
    return 0
