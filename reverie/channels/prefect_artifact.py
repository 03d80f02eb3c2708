"""The brief as a Prefect markdown artifact, shown with the flow run in the Prefect UI, and a link to its page."""

from __future__ import annotations

from reverie.channels import Brief, Channel

ARTIFACT_KEY = "reverie-brief"
PAGE_ARTIFACT_KEY = "reverie-brief-page"


class PrefectArtifact(Channel):
    def send(self, brief: Brief) -> str:
        """Publish the brief under the key reverie-brief and a link to its page; returns the brief artifact's id."""
        # imported here: reading reverie.toml (every CLI command) should not pay Prefect's 1.5 s import
        from prefect.artifacts import create_link_artifact, create_markdown_artifact

        artifact_id = create_markdown_artifact(key=ARTIFACT_KEY, markdown=brief.markdown,
                                               description=f"reverie brief for cycle {brief.cycle_id}")
        create_link_artifact(key=PAGE_ARTIFACT_KEY, link=brief.page.resolve().as_uri(),
                             link_text=f"{brief.project} brief, {brief.cycle_id} (page with charts)",
                             description=f"reverie brief page for cycle {brief.cycle_id}")
        return str(artifact_id)
