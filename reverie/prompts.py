"""The analyst's prompts: Markdown files in prompts/, each with a version header, filled in by name."""

from __future__ import annotations

from reverie.paths import PROMPTS_DIR


def prompt(name: str, **values) -> str:
    """A prompt file from prompts/, with its {placeholders} filled in (the header comment left out)."""
    text = (PROMPTS_DIR / f"{name}.md").read_text()
    text = text.split("-->\n", 1)[1] if text.startswith("<!--") else text
    return text.format(**values) if values else text


def embedded_prompt(candidate: str = "") -> str:
    """The embedded model's prompt for one candidate; with none, the part every call shares (to prime its cache)."""
    text = prompt("analyst_embedded")
    return text.replace("{candidate}", candidate) if candidate else text.split("{candidate}")[0]
