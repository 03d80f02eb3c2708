-- Active memory items about one metric (about one slice, when a slice is asked about), the newest period first,
-- the whole business before a slice: what a question about a change, its drivers, start or size reads.
select id, kind, title, dimension, member, period_start, valid_from, valid_to, evidence
from memory
where status = 'active'
    and metric = $metric
    and kind not in ('prepared_answer', 'data_quality')
    and kind not in (select name from detectors where not describes_change)  -- a share or a goal is no change
    and ($dimension = 'overall' or (dimension = $dimension and member = $member))
    and ($day is null or $day between coalesce(valid_from, period_start) and coalesce(valid_to, period_start))
order by
    period_start desc nulls last,
    dimension = 'overall' desc,
    case severity when 'critical' then 0 when 'warning' then 1 else 2 end,
    score desc nulls last
limit 3
