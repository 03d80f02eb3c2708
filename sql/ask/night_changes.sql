-- This cycle's biggest changes in memory (added or confirmed by it), most severe first: what people will ask
-- about next.
with touched as (
    select memory_id from memory_history
    where cycle_id = $cycle_id and change in ('insert', 'confirm')
)

select metric, dimension, member, period_start
from memory
where status = 'active'
    and id in (select memory_id from touched)
    and metric is not null
    and kind not in ('prepared_answer', 'data_quality')
    and kind not in (select name from detectors where not describes_change)  -- a share or a goal is no change
order by case severity when 'critical' then 0 when 'warning' then 1 else 2 end, score desc nulls last
limit $limit
