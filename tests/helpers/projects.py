"""Small generated projects as the tests make them: scaffolded like `reverie init`, with days of demo events, and
their reverie.toml edited."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from reverie.config import load_settings
from reverie.generator import generate
from reverie.project import scaffold
from tests.helpers.scripted_llm import finish

START = date(2026, 1, 5)  # a Monday


def new_project(folder: Path, days: int = 56, seed: int = 7, scale: float = 0.3, base_url: str | None = None,
                toml: str = ""):
    """A project folder scaffolded like `reverie init`, with `days` of generated demo events."""
    scaffold(folder)
    config = folder / "reverie.toml"
    llm = f'base_url = "{base_url}"\nmodel = "scripted-analyst"\ntimeout_seconds = 5.0\n' if base_url else ""
    config.write_text(config.read_text().replace("[llm]\n", f"[llm]\n{llm}", 1) + toml)
    settings = load_settings(folder)
    generate(settings.landing_dir, days, start=START, seed=seed, scale=scale)
    return settings


def configure(settings, **llm) -> None:
    """Set [llm] fields in the project's reverie.toml (replacing earlier values)."""
    config = settings.project_dir / "reverie.toml"
    kept = [line for line in config.read_text().splitlines(keepends=True) if line.split(" = ")[0] not in llm]
    lines = "".join(f"{key} = {value}\n" for key, value in llm.items())
    config.write_text("".join(kept).replace("[llm]\n", f"[llm]\n{lines}", 1))


def project_delivering(make_project, scripted_llm, deliver: str = "", days: int = 35):
    """A generated project whose [deliver] section holds `deliver`, with an analyst that only finishes."""
    settings = make_project(days=days, base_url=scripted_llm.base_url)
    config = settings.project_dir / "reverie.toml"
    config.write_text(config.read_text().replace("[deliver]\n", f"[deliver]\n{deliver}", 1))
    scripted_llm.script(finish, finish)
    return settings
