/* detector:
name: unusual_change
weight: 1.0
describes_change: true
baseline: same_weekday_weeks
settings: [baseline_weeks, noise_days, min_history, min_abs_z, min_rel_change, member_extra_z, min_volume]
own_settings:
  early_extra_z: 2.0  # a day in a series' first weeks (a short baseline) needs this much more z
*/
-- Unusual change: a complete day far from the median of the same weekday in the previous weeks.
-- Comparing like weekdays keeps weekly seasonality from firing. How far is "far" is learned per
-- series: the typical deviation of its earlier days from their own baselines (median absolute
-- deviation), or of its earlier days alike (weekends, or working days) where those are noisier (a
-- station's Sundays swing with the weather more than its commutes); on the metric's scale: in units
-- of sampling noise for counts and shares, on a log scale for other positive values, in their own
-- units for signed ones (scaled_change). One
-- member of a dimension needs $member_extra_z more than the whole business: there are many
-- members, so many more chances for noise to look unusual. An average or a ratio needs
-- $min_volume rows behind it, that day and usually. A count's or a sum's first weeks use the history there
-- is: from two earlier same weekdays and five days to learn its noise from, a day whose baseline is short
-- (fewer than 3 same weekdays, or fewer than $min_history days of noise) needs $early_extra_z more and
-- twice the relative change, and its comparison says how many weeks it rests on. A day far outside every
-- day of the four weeks before (far_outside) is reported however noisy the series has been: a storm's
-- collapse in a weather-driven series; a count's day must also be as far in units of sampling noise (34
-- orders a day falling to 17 happens by chance once in 1,000 series-days, however high the four weeks
-- before were). A count too small for one day to tell (usually below $min_volume a day) is read over runs
-- of days instead: two or three days in a row that each moved the same way by twice $min_rel_change are
-- reported as one change when their total is as far from the total of their baselines (and at least
-- $min_volume of the two): one region's cancellations at 4x for two days.
with day_values as (
    select v.*, m.measure, m.favourability, metric_scale(m.scale, m.measure) as scale,
        rows_behind(v.volume, v.denominator, v.value) as rows
    from metric_values v
    join metrics m on m.name = v.metric
    where v.grain = 'day' and v.complete and isfinite(v.value)
      and v.period_start >= $since - to_days($noise_days + 7 * $baseline_weeks + 7)  -- all the history a new day needs
),

with_history as (
    select
        *,
        list(value) over same_weekdays as history,
        median(rows) over same_weekdays as usual_rows,
        min(value) over recent_days as recent_low,
        max(value) over recent_days as recent_high,
        count(value) over recent_days as recent_count
    from day_values
    window
        same_weekdays as (
            partition by metric, grain, dimension, member, dayofweek(period_start)
            order by period_start
            rows between $baseline_weeks preceding and 1 preceding
        ),
        recent_days as (
            partition by metric, grain, dimension, member
            order by period_start
            rows between 27 preceding and 1 preceding
        )
),

baselined as (
    select
        *,
        list_aggregate(history, 'median') as expected,
        if(scale = 'absolute' or (scale = 'points' and measure <> 'ratio'),
           list_aggregate(list_transform(history, x -> abs(x)), 'median'), 0) as level,
        scaled_change(measure, scale, value, list_aggregate(history, 'median'), numerator, denominator) as deviation
    from with_history
    where len(history) >= 2
),

spreads as (
    select
        *,
        -- a series' usual noise is learned from days with a full baseline; its first weeks' from all it has
        1.4826 * median(abs(deviation)) filter (where len(history) >= 3) over earlier_days as full_spread,
        count(deviation) filter (where len(history) >= 3) over earlier_days as full_points,
        1.4826 * median(abs(deviation)) over earlier_days as early_spread,
        count(deviation) over earlier_days as early_points,
        1.4826 * median(abs(deviation)) filter (where len(history) >= 3) over earlier_days_alike as alike_spread,
        count(deviation) filter (where len(history) >= 3) over earlier_days_alike as alike_points
    from baselined
    window
        earlier_days as (
            partition by metric, grain, dimension, member
            order by period_start
            rows between $noise_days preceding and 1 preceding
        ),
        earlier_days_alike as (  -- weekends with weekends, working days with working days
            partition by metric, grain, dimension, member, isodow(period_start) >= 6
            order by period_start
            range between to_days($noise_days) preceding and interval 1 day preceding
        )
),

with_noise as (
    select
        *,
        if(sampled_only(measure, scale, expected, denominator), 1.0,
           greatest(if(early, early_spread, full_spread), if(not early and alike_points >= $min_history, alike_spread, 0),
                    scaled_least_noise(measure, scale, level))) as noise,
        if(early, early_points, full_points) as noise_points
    from (select *, len(history) < 3 or full_points < $min_history as early from spreads)
),

small_moves as (  -- a small count's days that moved one way by twice the least change, numbered by island of days
    select
        *,
        sign(deviation) as way,
        period_start - to_days(row_number() over (
            partition by metric, grain, dimension, member, sign(deviation) order by period_start
        )::integer) as island
    from with_noise
    where measure in ('count', 'count_distinct') and scale = 'relative' and expected < $min_volume
      and not early and noise_points >= $min_history
      and big_enough(measure, scale, value, expected, denominator, level, 2 * $min_rel_change)
),

runs as (
    select
        metric, grain, dimension, member,
        min(period_start)::date as period_start,
        max(period_start)::date as period_end,
        sum(value) as observed,
        sum(expected) as expected,
        min(len(history)) as weeks,
        deviance_residual(sum(value), sum(expected)) / max(noise) as strength
    from small_moves
    group by metric, grain, dimension, member, way, island
    having count(*) between 2 and 3 and max(period_start) >= $since
)

select
    metric,
    grain,
    dimension,
    member,
    period_start::date as period_start,
    period_start::date as period_end,
    value as observed,
    expected,
    format('the median of the same weekday over the previous {} weeks', len(history)) as comparison,
    deviation / noise as strength,
    format(
        'select period_start, value
        from metric_values
        where metric = ''{}'' and grain = ''day'' and dimension = ''{}'' and member = ''{}'' and dayofweek(period_start) = {} and period_start between date ''{}'' - interval {} week and date ''{}''
        order by period_start',
        metric, dimension, replace(member, '''', ''''''), dayofweek(period_start),
        period_start::date, $baseline_weeks, period_start::date
    ) as evidence_sql
from with_noise
where period_start >= $since
  and noise_points >= if(early, 5, $min_history)  -- the fewest days a noise can be learned from
  and (not early or measure in ('count', 'count_distinct', 'sum'))  -- an average's tails need more days
  and (abs(deviation) / noise >= $min_abs_z + if(dimension = 'overall', 0, $member_extra_z) + if(early, $early_extra_z, 0)
       or (far_outside(measure, scale, favourability, value, recent_low, recent_high, recent_count, $min_rel_change)
           and (measure not in ('count', 'count_distinct')  -- and, for a count, beyond what sampling alone does
                or abs(deviation) >= $min_abs_z + if(dimension = 'overall', 0, $member_extra_z))))
  and big_enough(measure, scale, value, expected, denominator, level, $min_rel_change * if(early, 2, 1))  -- 0 to 5 refunds is a change
  and enough_rows(measure, rows, usual_rows, expected, $min_volume)

union all

select
    metric,
    grain,
    dimension,
    member,
    period_start,
    period_end,
    observed,
    expected,
    format('the sum of each day''s median of the same weekday over the previous {} weeks', weeks) as comparison,
    strength,
    format(
        'select period_start, value
        from metric_values
        where metric = ''{}'' and grain = ''day'' and dimension = ''{}'' and member = ''{}'' and period_start between date ''{}'' - interval {} week and date ''{}''
        order by period_start',
        metric, dimension, replace(member, '''', ''''''), period_start, $baseline_weeks, period_end
    ) as evidence_sql
from runs
where abs(strength) >= $min_abs_z + if(dimension = 'overall', 0, $member_extra_z)
  and greatest(observed, expected) >= $min_volume
