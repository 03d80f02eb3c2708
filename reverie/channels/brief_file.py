"""The brief as files in the briefs folder — markdown, a page with charts, its items as JSON — and latest.* next to
them."""

from __future__ import annotations

import json
from pathlib import Path

from reverie.channels import Brief, Channel

SUFFIXES = (".md", ".html", ".json")


def brief_files(briefs_dir: Path, cycle: str | None = None) -> tuple[dict[str, Path], dict]:
    """A cycle's brief as this channel wrote it (the latest without `cycle`): its files by suffix, and its items
    (the .json, or {} where there is none); the markdown file may be missing (no brief yet)."""
    files = {suffix: briefs_dir / f"{cycle or 'latest'}{suffix}" for suffix in SUFFIXES}
    return files, json.loads(files[".json"].read_text()) if files[".json"].exists() else {}


class BriefFile(Channel):
    def send(self, brief: Brief) -> str:
        """Write <cycle>.md, .html and .json, and the same as latest.*; returns the cycle's markdown file."""
        brief.briefs_dir.mkdir(parents=True, exist_ok=True)
        files = dict(zip(SUFFIXES, (brief.markdown, brief.html, json.dumps(brief.document, indent=1, default=str))))
        for suffix, text in files.items():
            brief.path.with_suffix(suffix).write_text(text)
        # latest.* last, each whole: a reader never finds a cycle's page next to another cycle's markdown for long
        for suffix, text in files.items():
            latest = brief.briefs_dir / f"latest{suffix}"
            partial = latest.with_name(f".latest{suffix}.tmp")
            partial.write_text(text)
            partial.replace(latest)
        return str(brief.path)
