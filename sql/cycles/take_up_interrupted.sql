-- The cycles a run left unfinished: `running` (it was killed, or its machine stopped; the caller holds the writer
-- lock, so no live run owns them) or `failed` (a stage raised: the disk filled up, say). The oldest is taken up
-- again under its id; the others' batches go to it.
with interrupted as (
    select cycle_id, started_at
    from cycles
    where status in ('running', 'failed')
)

select cycle_id
from interrupted
order by started_at, cycle_id
