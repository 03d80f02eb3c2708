"""One analyst run: what it may touch, what it wrote and had refused, and what its calls cost."""

from __future__ import annotations

from dataclasses import dataclass, field

from reverie.analyst.evidence import Catalog
from reverie.llm_calls import token_totals
from reverie.warehouse import Warehouse


@dataclass
class AnalystRun:
    """What one analyst run produced and cost, and what it may touch."""
    warehouse: Warehouse
    written: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)  # ledger rows, one per completion
    tool_calls: int = 0
    finished: bool = False
    error: str | None = None
    catalog: Catalog = field(default_factory=Catalog)

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens over all its calls."""
        return token_totals(self.calls)[0]

    @property
    def completion_tokens(self) -> int:
        """Completion tokens over all its calls."""
        return token_totals(self.calls)[1]
