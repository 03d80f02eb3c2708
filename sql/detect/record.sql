-- Record high or low: a complete period above the highest (below the lowest) value of the
-- previous $record_days days by at least $record_margin — or by the series' own spread (median
-- absolute deviation over its last $noise_days periods, relative to its median) when that is
-- larger — after enough history to mean something (8 weeks of days, 8 weeks, 6 months). The
-- margin keeps a slow trend, and the spread a small noisy slice, from setting a "record" every week.
with periods as (
    select
        *,
        max(value) over earlier as previous_high,
        min(value) over earlier as previous_low,
        count(value) over earlier as history,
        1.4826 * mad(value) over recent / nullif(abs(median(value) over recent), 0) as spread
    from metric_values
    where complete and grain in ('day', 'week', 'month') and isfinite(value)
    window earlier as (
        partition by metric, grain, dimension, member
        order by period_start
        range between to_days($record_days) preceding and to_days(1) preceding
    ),
    recent as (
        partition by metric, grain, dimension, member
        order by period_start
        rows between $noise_days preceding and 1 preceding
    )
),

records as (
    select
        *,
        case
            when value > previous_high * (1 + greatest($record_margin, spread)) and previous_high > 0 then 'high'
            when value < previous_low * (1 - least(greatest($record_margin, spread), 0.9)) and previous_low > 0 then 'low'
        end as record
    from periods
    where history >= case grain when 'day' then 56 when 'week' then 8 else 6 end
)

select
    'record' as detector,
    metric,
    grain,
    dimension,
    member,
    period_start::date as period_start,
    (period_start + period_length(grain) - interval 1 day)::date as period_end,
    value as observed,
    if(record = 'high', previous_high, previous_low) as expected,
    format('the {} of the previous {} days', if(record = 'high', 'highest', 'lowest'), $record_days) as comparison,
    (value / if(record = 'high', previous_high, previous_low) - 1) / $record_margin as strength,
    format(
        'select max(value) filter (where period_start < timestamp ''{2}'') as previous_high, min(value) filter (where period_start < timestamp ''{2}'') as previous_low, max(value) filter (where period_start = timestamp ''{2}'') as value from metric_values where metric = ''{0}'' and grain = ''{1}'' and dimension = ''{3}'' and member = ''{4}'' and complete and period_start between timestamp ''{2}'' - interval {5} day and timestamp ''{2}''',
        metric, grain, period_start, dimension, replace(member, '''', ''''''), $record_days
    ) as evidence_sql
from records
where record is not null
  and period_start + period_length(grain) > $since
  and coalesce(denominator, abs(if(record = 'high', previous_high, previous_low))) >= $min_volume
