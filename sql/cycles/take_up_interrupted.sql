-- The cycles a run left `running` and never finished (it was killed, or its machine stopped): the caller holds the
-- writer lock, so no live run owns them. The oldest is taken up again under its id; the others' batches go to it.
with interrupted as (
    select cycle_id, started_at
    from cycles
    where status = 'running'
)

select cycle_id
from interrupted
order by started_at, cycle_id
