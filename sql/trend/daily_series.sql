-- Every complete daily value from $since on, with its volume: the series the changepoint detector reads.
select
    metric,
    dimension,
    member,
    period_start::date as day,
    value,
    coalesce(denominator, abs(value)) as volume
from metric_values
where grain = 'day'
    and complete
    and isfinite(value)
    and period_start >= $since
