-- Periods with no overall value between a metric's first and last period, per grain.
with series as (
    select grain, period_start
    from metric_values
    where metric = $metric and dimension = 'overall'
),

bounds as (
    select grain, min(period_start) as first_period, max(period_start) as last_period
    from series
    group by grain
),

expected as (
    select grain, unnest(generate_series(first_period, last_period, ('1 ' || grain)::interval)) as period_start
    from bounds
)

select grain, period_start
from expected
anti join series using (grain, period_start)
order by grain, period_start
