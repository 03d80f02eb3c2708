-- Active memory items about one metric (any slice, or the one asked about) whose period falls in a span of days,
-- most severe first, then the newest: what "is anything wrong with X" reads.
select id, severity, title, cast(period_start as date) as day
from memory
where status = 'active'
    and metric = $metric
    and kind not in ('prepared_answer', 'pace_to_goal')
    and ($dimension = 'overall' or (dimension = $dimension and member = $member))
    and cast(coalesce(valid_to, period_start) as date) >= $start
    and cast(coalesce(valid_from, period_start) as date) <= $end
order by
    case severity when 'critical' then 0 when 'warning' then 1 else 2 end,
    period_start desc nulls last,
    score desc nulls last
