-- A metric over a span of days, per member of one dimension ('overall' for the whole business, or one member):
-- computed from its complete daily values the way the metric aggregates (a ratio from its parts, an average
-- weighted by its rows, a distinct count not at all: distinct counts do not add up over days).
with days as (
    select member, value, numerator, denominator, volume
    from daily_values
    where metric = $metric
        and dimension = $dimension
        and ($member is null or member = $member)
        and day between $start and $end
),

measure as (
    select measure from metrics where name = $metric
)

select
    member,
    case (select measure from measure)
        when 'sum' then sum(value)
        when 'count' then sum(value)
        when 'ratio' then sum(numerator) / nullif(sum(denominator), 0)
        when 'avg' then sum(value * volume) / nullif(sum(volume), 0)
        when 'min' then min(value)
        when 'max' then max(value)
    end as value,
    count(value) as days,
    (select measure from measure) as measure
from days
group by member
order by value desc nulls last, member
