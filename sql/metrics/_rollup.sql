-- Template: rolls one metric's facts (period_start, dimensions, numerator, denominator) up to
-- day values per dimension member, plus an 'overall' row per day.
-- The braced names are filled in per metric by tasks/metrics.py.
with facts as (
    {facts}
),

rolled as (
    select
        period_start,
        {dimension_case} as dimension,
        {member} as member,
        sum(numerator)::double as numerator,
        sum(denominator)::double as denominator
    from facts
    group by grouping sets ({grouping_sets})
)

select
    '{metric}' as metric,
    'day' as grain,
    period_start,
    dimension,
    coalesce(member, '(missing)') as member,
    case when '{measure}' = 'ratio' then numerator / nullif(denominator, 0) else numerator end as value,
    case when '{measure}' = 'ratio' then numerator end as numerator,
    case when '{measure}' = 'ratio' then denominator end as denominator
from rolled
