-- A metric's value for one slice on one day, its value the same weekday a week before, and the scale its
-- changes are read in.
with this_day as (
    select value, volume
    from daily_values
    where metric = $metric and dimension = $dimension and member = $member and day = $day
),

week_before as (
    select value
    from daily_values
    where metric = $metric and dimension = $dimension and member = $member and day = $day - 7
)

select
    (select value from this_day) as value,
    (select volume from this_day) as volume,
    (select value from week_before) as week_before,
    (select scale from metrics where name = $metric) as scale
