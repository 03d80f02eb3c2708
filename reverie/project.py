"""A reverie project folder: reverie.toml, models/, metrics/, quality/ and the landing folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from reverie.config import CONFIG_FILE, load_settings

TEMPLATE = Path(__file__).parent / "templates" / "project"


def scaffold(directory: Path) -> dict:
    """Write the template project's files that are not there yet; never overwrite a file."""
    directory.mkdir(parents=True, exist_ok=True)
    created = []
    for template in sorted(TEMPLATE.rglob("*")):
        target = directory / template.relative_to(TEMPLATE)
        if template.is_dir() or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if template.name == CONFIG_FILE:
            target.write_text(template.read_text().replace("{name}", directory.resolve().name))
        else:
            shutil.copyfile(template, target)
        created.append(str(target.relative_to(directory)))
    settings = load_settings(directory)
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    return {"project": str(directory.resolve()), "created": created, "landing": str(settings.landing_dir)}
