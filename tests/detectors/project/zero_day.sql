/* detector:
name: zero_day                 # the file's name, and the type of its findings
weight: 1.0                    # what a finding is worth to a reader (reverie's own: 0.4 to 1.0)
describes_change: true         # a day at zero is a drop: it merges with other detectors' findings of that day
baseline: same_weekday_weeks   # compared with the same weekday over the previous baseline_weeks weeks
settings: [baseline_weeks, min_volume]   # the [detect] settings the query reads, as $baseline_weeks ...
*/
-- Zero day: an additive metric was zero, or had no row at all, on a day up to its latest complete
-- day, where the same weekday was above zero in each of the previous $baseline_weeks weeks and
-- their median is at least $min_volume. No row is what the other detectors cannot see (they
-- compare the rows there are): the day's data never arrived, or a filter upstream broke. A
-- weekday that is often zero (a shop closed on Sundays) and a slice too small for zero to be
-- news stay silent.
with latest as (
    select metric, max(period_start) as last_day
    from metric_values
    where grain = 'day' and complete
    group by metric
),

series as (
    select v.metric, v.dimension, v.member, m.measure, min(v.period_start) as first_day, latest.last_day
    from metric_values v
    join metrics m on m.name = v.metric
    join latest on latest.metric = v.metric
    where v.grain = 'day' and m.measure in ('sum', 'count', 'count_distinct')
    group by all
),

calendar as (  -- every day of each series, rows or not
    select metric, dimension, member, measure,
           unnest(generate_series(first_day, last_day, interval 1 day)) as period_start
    from series
),

days as (
    select c.*, coalesce(v.value, 0) as value
    from calendar c
    left join metric_values v
      on v.metric = c.metric and v.grain = 'day' and v.dimension = c.dimension and v.member = c.member
     and v.period_start = c.period_start
),

with_history as (
    select
        *,
        list(value) over (
            partition by metric, dimension, member, dayofweek(period_start)
            order by period_start
            rows between $baseline_weeks preceding and 1 preceding
        ) as history
    from days
)

select
    metric,
    'day' as grain,
    dimension,
    member,
    period_start::date as period_start,
    period_start::date as period_end,
    value as observed,
    list_aggregate(history, 'median') as expected,
    format('the median of the same weekday over the previous {} weeks', $baseline_weeks) as comparison,
    -- in the units of unusual_change: sampling noise for counts, a log scale for sums
    stable_change(measure, value, list_aggregate(history, 'median'), null, null) as strength,
    format(
        'select coalesce(sum(value) filter (where period_start = timestamp ''{0}''), 0) as value_that_day, count(*) filter (where period_start = timestamp ''{0}'') as rows_that_day, median(value) filter (where period_start < timestamp ''{0}'') as usual from metric_values where metric = ''{1}'' and grain = ''day'' and dimension = ''{2}'' and member = ''{3}'' and dayofweek(period_start) = dayofweek(timestamp ''{0}'') and period_start between timestamp ''{0}'' - interval {4} week and timestamp ''{0}''',
        period_start, metric, dimension, replace(member, '''', ''''''), $baseline_weeks
    ) as evidence_sql
from with_history
where value = 0
  and period_start >= $since
  and len(history) = $baseline_weeks
  and list_min(history) > 0
  and list_aggregate(history, 'median') >= $min_volume
