-- The cycles a run left unfinished since the last one that ended well: `running` (it was killed, or its machine
-- stopped; the caller holds the writer lock, so no live run owns them) or `failed` (a stage raised: the disk filled
-- up, say). The oldest is taken up again under its id; the others' batches go to it.
with last_good as (
    select max(started_at) as started_at
    from cycles
    where status in ('completed', 'degraded', 'refreshed')
),

interrupted as (
    select cycles.cycle_id, cycles.started_at
    from cycles
    cross join last_good
    where cycles.status in ('running', 'failed')
      and (last_good.started_at is null or cycles.started_at > last_good.started_at)
)

select cycle_id
from interrupted
order by started_at, cycle_id
