-- One metric at one grain: its value per period, overall and per dimension member.
-- The braced names are filled in from the metric's declaration by tasks/metrics.py.
with source as (
    select * from {model}
    where {time_column} >= $since and {filter}
),

bucketed as (
    select
        date_trunc('{grain}', {time_column})::timestamp as period_start,
        *
    from source
),

rolled as (
    select
        period_start,
        {dimension_case} as dimension,
        {member_case} as member,
        {numerator} as numerator,
        {denominator} as denominator
    from bucketed
    group by grouping sets ({grouping_sets})
)

select
    '{metric}' as metric,
    '{grain}' as grain,
    period_start,
    dimension,
    coalesce(member, '(missing)') as member,
    {value} as value,
    {ratio_numerator} as numerator,
    {ratio_denominator} as denominator
from rolled
