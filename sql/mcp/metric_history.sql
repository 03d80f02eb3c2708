-- A metric's last $count values at one grain for one slice within a span, oldest first; whether each period is
-- complete (its data has all arrived) and how many rows are behind it.
with newest as (
    select period_start, value, complete, volume as rows_behind
    from period_values
    where metric = $metric
        and grain = $grain
        and dimension = $dimension
        and member = $member
        and period_start between $start and $end
    order by period_start desc
    limit $count
)

select *
from newest
order by period_start
