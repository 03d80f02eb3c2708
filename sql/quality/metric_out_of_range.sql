-- A metric's values recomputed this cycle that fall outside [$min, $max] (either bound may be null).
with recomputed as (
    select grain, period_start, dimension, member, value
    from metric_values
    where metric = $metric and cycle_id = $cycle_id
)

select
    count(*) as total,
    count(*) filter (where value < $min or value > $max) as outside,
    list(grain || ' ' || strftime(period_start, '%Y-%m-%d') || ' ' || dimension || '=' || member || ': ' || value)
        filter (where value < $min or value > $max)[1:3] as sample
from recomputed
