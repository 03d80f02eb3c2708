-- One metric at one grain: its value per period, overall and per dimension member, with the rows behind it.
-- Filled from the metric's declaration by tasks/metrics/refresh.py: the model is an identifier, the name a
-- literal; the measures, the filter, the dimension lists, the start (its time column from $since, or every row)
-- and the period are expressions. $since and $grain are shared by the metrics refreshed together in one statement.
with source as (  -- the filter in parentheses: an `or` in it must not reach rows before $since
    select * from {{ model }}
    where {{ from_since }} and ({{ filter }})
),

bucketed as (
    select
        {{ period_start }} as period_start,
        *
    from source
),

rolled as (
    select
        period_start,
        {{ dimension }} as dimension,
        {{ member }} as member,
        {{ numerator }} as numerator,
        {{ denominator }} as denominator,
        {{ volume }} as volume
    from bucketed
    group by grouping sets ({{ grouping_sets }})
)

select
    {{ metric }} as metric,
    $grain as grain,
    period_start,
    dimension,
    coalesce(member, '(missing)') as member,
    {{ value }} as value,
    {{ ratio_numerator }} as numerator,
    {{ ratio_denominator }} as denominator,
    volume
from rolled
