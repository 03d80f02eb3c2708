"""The brief as a Prefect markdown artifact, shown with the flow run in the Prefect UI."""

from __future__ import annotations

from reverie.channels import Brief, Channel

ARTIFACT_KEY = "reverie-brief"


class PrefectArtifact(Channel):
    def send(self, brief: Brief) -> str:
        """Publish the brief under the key reverie-brief; returns the artifact's id."""
        # imported here: reading reverie.toml (every CLI command) should not pay Prefect's 1.5 s import
        from prefect.artifacts import create_markdown_artifact

        artifact_id = create_markdown_artifact(key=ARTIFACT_KEY, markdown=brief.markdown,
                                               description=f"reverie brief for cycle {brief.cycle_id}")
        return str(artifact_id)
