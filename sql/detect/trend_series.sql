-- Every complete daily value from $since on, with its volume: the series the changepoint detector reads. The volume
-- is what min_volume guards (see enough_rows): the value of a count or a sum, the rows behind anything else.
select
    v.metric,
    v.dimension,
    v.member,
    v.period_start::date as day,
    v.value,
    metric_scale(m.scale, m.measure) = 'absolute' as absolute,
    if(m.measure in ('count', 'count_distinct', 'sum'), abs(v.value), rows_behind(v.volume, v.denominator, v.value))
        as volume
from metric_values v
join metrics m on m.name = v.metric
where v.grain = 'day'
    and v.complete
    and isfinite(v.value)
    and v.period_start >= $since
