"""The brief as a markdown file in the briefs folder, and as latest.md next to it."""

from __future__ import annotations

from reverie.channels import Brief, Channel


class BriefFile(Channel):
    def send(self, brief: Brief) -> str:
        """Write <cycle>.md and latest.md; returns the cycle's file."""
        brief.briefs_dir.mkdir(parents=True, exist_ok=True)
        brief.path.write_text(brief.markdown)
        (brief.briefs_dir / "latest.md").write_text(brief.markdown)
        return str(brief.path)
