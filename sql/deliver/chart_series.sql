-- One changed metric's recent series for the brief page's chart: each complete period's value, the median the
-- unusual-change detector compares it with (the same weekday over the 4 weeks before; for weeks and months, the 4
-- periods before; for days in a source's first weeks, the 2 or 3 there are, how many in `baseline_periods`), and the
-- usual range around it: the same weekday over the 8 weeks before, its lowest and highest value left out so that
-- one earlier spike does not widen the band for two months. $days of it, up to the newest complete period.
with series as (
    select period_start::date as period, value
    from metric_values
    where metric = $metric and grain = $grain and dimension = $dimension and member = $member and complete
),

usual as (
    select
        period,
        value,
        median(value) over four_before as expected,
        quantile_disc(value, 0.15) over eight_before as low,
        quantile_disc(value, 0.85) over eight_before as high,
        count(value) over eight_before as periods_before
    from series
    window
        same_weekday as (partition by if($grain = 'day', dayofweek(period), 0) order by period),
        four_before as (same_weekday rows between 4 preceding and 1 preceding),
        eight_before as (same_weekday rows between 8 preceding and 1 preceding)
)

select
    period,
    value,
    if(periods_before >= 4, low, null) as low,
    if(periods_before >= if($grain = 'day', 2, 4), expected, null) as expected,  -- days: as unusual_change's first weeks
    if(periods_before >= 4, high, null) as high,
    least(periods_before, 4) as baseline_periods
from usual
where period > (select max(period) from series) - to_days($days)
order by period
