-- Unusual change: a complete day far from the median of the same weekday in the previous weeks.
-- Comparing like weekdays keeps weekly seasonality from firing. How far is "far" is learned per
-- series: the typical relative deviation of its earlier days from their own baselines (median
-- absolute deviation), so small, noisy slices need a bigger jump than large, steady ones.
with day_values as (
    select * from metric_values
    where grain = 'day' and complete
),

with_history as (
    select
        *,
        list(value) over (
            partition by metric, grain, dimension, member, dayofweek(period_start)
            order by period_start
            rows between $baseline_weeks preceding and 1 preceding
        ) as history
    from day_values
),

baselined as (
    select
        *,
        list_aggregate(history, 'median') as expected,
        value / nullif(list_aggregate(history, 'median'), 0) - 1 as relative_change
    from with_history
    where len(history) >= 3
),

with_noise as (
    select
        *,
        1.4826 * median(abs(relative_change)) over earlier_days as noise,
        count(relative_change) over earlier_days as noise_points
    from baselined
    window earlier_days as (
        partition by metric, grain, dimension, member
        order by period_start
        rows between $noise_days preceding and 1 preceding
    )
),

flagged as (
    select
        with_noise.*,
        relative_change / greatest(noise, 0.01) as z,
        metrics.favourability
    from with_noise
    join metrics on metrics.name = with_noise.metric
    where period_start >= $since
      and noise_points >= $min_history
      and abs(relative_change) / greatest(noise, 0.01) >= $min_abs_z
      and abs(relative_change) >= $min_rel_change
      and coalesce(denominator, abs(expected)) >= $min_volume
)

select
    'cand-' || substr(md5(concat_ws('|', $cycle_id, metric, grain, dimension, member, period_start::date)), 1, 12) as candidate_id,
    $cycle_id as cycle_id,
    'unusual_change' as detector,
    'anomaly' as kind,
    metric,
    grain,
    dimension,
    member,
    period_start::date as period_start,
    value as observed,
    expected,
    relative_change as magnitude,
    if(value > expected, 'up', 'down') as direction,
    case
        when favourability = 'neutral' then 'neutral'
        when (value > expected) = (favourability = 'up') then 'good'
        else 'bad'
    end as favourable,
    -- half from how unusual (z), half from how big (relative change); whole-business rows weigh more
    (0.5 * (1 - exp(-abs(z) / 8)) + 0.5 * least(abs(relative_change), 1.0))
        * if(dimension = 'overall', 1.0, 0.8) as score,
    format(
        'select period_start, value from metric_values where metric = ''{}'' and grain = ''{}'' and dimension = ''{}'' and member = ''{}'' and dayofweek(period_start) = {} and period_start between date ''{}'' - interval {} week and date ''{}'' order by period_start',
        metric, grain, dimension, replace(member, '''', ''''''), dayofweek(period_start),
        period_start::date, $baseline_weeks, period_start::date
    ) as evidence_sql
from flagged
