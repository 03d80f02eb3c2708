-- A metric over a span of days, per member of one dimension ('overall' for the whole business, or one member):
-- computed from its complete daily values the way the metric aggregates (a ratio from its parts, an average
-- weighted by its rows, a distinct count not at all: distinct counts do not add up over days).
with days as (
    select d.member, d.value, d.numerator, d.denominator, d.volume, m.measure
    from daily_values as d
    inner join metrics as m on m.name = d.metric
    where d.metric = $metric
        and d.dimension = $dimension
        and ($member is null or d.member = $member)
        and d.day between $start and $end
)

select
    member,
    case measure
        when 'sum' then sum(value)
        when 'count' then sum(value)
        when 'ratio' then sum(numerator) / nullif(sum(denominator), 0)
        when 'avg' then sum(value * volume) / nullif(sum(volume), 0)
        when 'min' then min(value)
        when 'max' then max(value)
    end as value,
    count(value) as days,
    measure
from days
group by member, measure
order by value desc nulls last, member
