"""What reverie remembers of each source's batches, as the CLI changes it."""

from __future__ import annotations

from reverie.warehouse import Warehouse


def retry_rejected(warehouse: Warehouse, source: str | None = None) -> int:
    """Mark the rejected batches of one source (None: of every source) to be tried again next cycle; returns how many."""
    with warehouse.connect() as con:
        return len(con.execute("update batches set status = 'retry' where status = 'rejected' "
                               "and ($source::varchar is null or source = $source) returning file",
                               {"source": source}).fetchall())
