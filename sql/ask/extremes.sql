-- The highest and lowest daily value of a metric for one slice between two days, the days they fell on, and the
-- history behind.
with series as (
    select day, value
    from daily_values
    where metric = $metric and dimension = $dimension and member = $member and value is not null
        and day between $start and $end
)

select
    (select day from series order by value desc, day desc limit 1) as highest_day,
    max(value) as highest,
    (select day from series order by value, day desc limit 1) as lowest_day,
    min(value) as lowest,
    count(*) as days,
    min(day) as first_day
from series
