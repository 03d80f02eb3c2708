/* detector:
name: record
weight: 0.8
describes_change: true
baseline: same_weekday_weeks
settings: [noise_days, min_abs_z, member_extra_z, min_volume]
own_settings:
  record_days: {default: 365, at_least: 1}  # a record is the highest or lowest value over this many days ...
  record_margin: 0.1  # ... and beats the previous one by at least this much
headline: "{metric} ({slice}) set a record {high_or_low} {period}: {observed} against {comparison}, {expected} ({change})."
*/
-- Record high or low: a complete period above the highest (below the lowest) value of the
-- previous $record_days days by at least $record_margin — or by the series' own spread (median
-- absolute deviation over its last $noise_days periods, relative to its median) when that is
-- larger — after enough history to mean something (8 weeks of days, 8 weeks, 6 months). The
-- margin keeps a slow trend, and the spread a small noisy slice, from setting a "record" every week.
-- A record must also be unusual: at least $min_abs_z spreads away from the recent median (one
-- member of a dimension: $member_extra_z more, as for unusual changes). Months of additive metrics
-- compare daily averages: a 31-day month is not a record for having one more day.
-- A signed metric (scale absolute: delays, margins) is measured in its own units: the margin is
-- $record_margin of its usual size or its spread (median absolute deviation), whichever is larger.
with comparable as (
    select
        v.* replace (if(m.measure in ('sum', 'count', 'count_distinct') and v.grain = 'month',
                        v.value / day(last_day(v.period_start)), v.value) as value),
        v.value as total,
        m.measure,
        metric_scale(m.scale, m.measure) as scale,
        rows_behind(v.volume, v.denominator, v.value) as rows
    from metric_values v
    join metrics m on m.name = v.metric
    where complete and grain in ('day', 'week', 'month') and isfinite(value)
      and period_start >= $since - greatest(to_days($record_days), ($noise_days + 1) * period_length(grain))
          - period_length(grain)  -- all the history a new period needs
),

periods as (
    select
        *,
        max(value) over earlier as previous_high,
        min(value) over earlier as previous_low,
        count(value) over earlier as history,
        min(period_start) over earlier as first_earlier,  -- what "the previous N days" can claim
        1.4826 * mad(value) over recent as spread_in_units,
        median(value) over recent as usual,
        median(rows) over recent as usual_rows
    from comparable
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

margins as (
    select
        *,
        spread_in_units / nullif(abs(usual), 0) as spread,  -- relative to the usual value
        greatest($record_margin * abs(usual), spread_in_units) as margin_in_units
    from periods
),

records as (
    select
        *,
        case
            when scale = 'absolute' and value > previous_high + margin_in_units then 'high'
            when scale = 'absolute' and value < previous_low - margin_in_units then 'low'
            when scale <> 'absolute' and value > previous_high * (1 + greatest($record_margin, spread))
                 and previous_high > 0 then 'high'
            when scale <> 'absolute' and value < previous_low * (1 - least(greatest($record_margin, spread), 0.9))
                 and previous_low > 0 then 'low'
        end as record
    from margins
    where history >= case grain when 'day' then 56 when 'week' then 8 else 6 end
      and if(scale = 'absolute',
             abs(value - usual) >= spread_in_units * ($min_abs_z + if(dimension = 'overall', 0, $member_extra_z)),
             abs(value / nullif(usual, 0) - 1) >= spread * ($min_abs_z + if(dimension = 'overall', 0, $member_extra_z)))
)

select
    metric,
    grain,
    dimension,
    member,
    period_start::date as period_start,
    (period_start + period_length(grain) - interval 1 day)::date as period_end,
    value as observed,
    if(record = 'high', previous_high, previous_low) as expected,
    format('the {} {} of the previous {} days', if(record = 'high', 'highest', 'lowest'),
           if(total <> value, 'daily average of a month', 'value'),
           least($record_days, date_diff('day', first_earlier, period_start))) as comparison,
    if(scale = 'absolute', (value - if(record = 'high', previous_high, previous_low)) / nullif(margin_in_units, 0),
       (value / if(record = 'high', previous_high, previous_low) - 1) / $record_margin) as strength,
    format(
        'with periods as (select period_start, value / if({6}, day(last_day(period_start)), 1) as value from metric_values where metric = ''{0}'' and grain = ''{1}'' and dimension = ''{3}'' and member = ''{4}'' and complete and period_start between timestamp ''{2}'' - interval {5} day and timestamp ''{2}'')
        select max(value) filter (where period_start < timestamp ''{2}'') as previous_high, min(value) filter (where period_start < timestamp ''{2}'') as previous_low, max(value) filter (where period_start = timestamp ''{2}'') as value
        from periods',
        metric, grain, period_start, dimension, replace(member, '''', ''''''), $record_days, total <> value
    ) as evidence_sql
from records
where record is not null
  and period_start + period_length(grain) > $since
  and enough_rows(measure, rows, usual_rows, if(record = 'high', previous_high, previous_low), $min_volume)
