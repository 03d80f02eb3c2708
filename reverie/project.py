"""A reverie project folder: reverie.toml, models/, metrics/, quality/ and the landing folder."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from reverie.config import CONFIG_FILE, ConfigError, load_settings

TEMPLATE = Path(__file__).parent / "templates" / "project"
EXAMPLES = ("models", "metrics", "quality")  # the demo's, left out of a project whose metrics come from dbt


def scaffold(directory: Path, dbt_dir: Path | None = None) -> dict:
    """Write the template project's files that are not there yet; never overwrite a file. With `dbt_dir`, reverie.toml
    reads that dbt project ([dbt]) instead of the demo's source, and the demo's models and metrics are left out."""
    if dbt_dir is not None and not (dbt_dir / "dbt_project.yml").is_file():
        raise ConfigError(f"{dbt_dir}: no dbt_project.yml there (--from-dbt takes a dbt project's folder)")
    directory.mkdir(parents=True, exist_ok=True)
    created = []
    for template in sorted(TEMPLATE.rglob("*")):
        target = directory / template.relative_to(TEMPLATE)
        if template.is_dir() or target.exists() or (dbt_dir and template.relative_to(TEMPLATE).parts[0] in EXAMPLES):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if template.name == CONFIG_FILE:
            text = template.read_text().replace("{name}", directory.resolve().name)
            target.write_text(_reading_dbt(text, os.path.relpath(dbt_dir.resolve(), directory.resolve()))
                              if dbt_dir else text)
        else:
            shutil.copyfile(template, target)
        created.append(str(target.relative_to(directory)))
    settings = load_settings(directory)
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    return {"project": str(directory.resolve()), "created": created, "landing": str(settings.landing_dir)}


def _reading_dbt(text: str, dbt_dir: str) -> str:
    """The template's reverie.toml with [dbt] set to the dbt project and the demo's source commented out."""
    source = re.search(r"^\[sources\.events\]\n(?:[^\n\[#][^\n]*\n)*", text, re.MULTILINE)
    text = text.replace(source.group(0), "".join(f"# {line}\n" for line in source.group(0).splitlines()))
    line = re.search(r'^# project_dir = "[^"]*"( +)#', text, re.MULTILINE)
    setting = f'project_dir = "{dbt_dir}"'
    return text.replace("# [dbt]\n", "[dbt]\n").replace(
        line.group(0), setting.ljust(len(line.group(0)) - 1) + "#" if len(setting) < len(line.group(0)) - 1
        else f"{setting}  #")
