/* detector:
name: period_over_period
weight: 0.9
describes_change: true
baseline: previous_period
settings: [noise_days, min_history, min_abs_z, min_rel_change, member_extra_z, min_volume]
own_settings:
  pop_min_z: 5.0  # two noisy periods compared, not one against a baseline: more z than min_abs_z
*/
-- Period over period: a complete day, week or month against the one before it (a day against the
-- same weekday a week earlier, so weekly seasonality does not fire). Months of additive metrics
-- compare daily averages, so a 31-day month is not news after a 30-day one. A change must be large
-- and unusual for the series (robust z against its earlier changes: in units of sampling noise for
-- counts and shares, on a log scale for other positive values and for months, in their own units
-- for signed values; a day's noise is the wider of its series' and its kind of days', weekends or
-- working days, as in unusual_change; one member of a dimension needs $member_extra_z more), the
-- period compared with must itself be ordinary, and the new value must also stand apart, as clearly, from the
-- median of the last four periods (for days: the same weekday): the week after an outage or a
-- surge is a return to normal. An average or a ratio needs $min_volume rows in both periods.
with series as (
    select
        v.*,
        m.measure,
        metric_scale(m.scale, m.measure) as scale,
        rows_behind(v.volume, v.denominator, v.value) as rows,
        case v.grain when 'month' then v.period_start - interval 1 month else v.period_start - interval 7 day end
            as previous_start,
        if(m.measure in ('sum', 'count', 'count_distinct') and v.grain = 'month',
           v.value / day(last_day(v.period_start)), v.value) as comparable
    from metric_values v
    join metrics m on m.name = v.metric
    where v.grain in ('day', 'week', 'month') and v.complete and isfinite(v.value)
      and v.period_start >= $since - ($noise_days + 7) * period_length(v.grain)  -- all the history a new period needs
),

with_usual as (
    select
        *,
        median(comparable) over (
            partition by metric, grain, dimension, member, if(grain = 'day', dayofweek(period_start), 0)
            order by period_start
            rows between 4 preceding and 1 preceding
        ) as usual
    from series
),

changes as (
    select
        cur.*,
        prev.value as previous,
        prev.comparable as previous_comparable,
        prev.rows as previous_rows,
        abs(cur.usual) as level,
        -- a month's daily averages are not counts: compared on the log scale, or in their units when signed
        if(cur.grain = 'month' and cur.scale <> 'absolute', log_change(cur.measure, cur.comparable, cur.usual, cur.denominator),
           scaled_change(cur.measure, cur.scale, cur.comparable, cur.usual, cur.numerator, cur.denominator))
            as deviation_from_usual,
        if(cur.grain = 'month' and cur.scale <> 'absolute',
           log_change(cur.measure, cur.comparable, prev.comparable, cur.denominator),
           scaled_change(cur.measure, cur.scale, cur.comparable, prev.comparable, cur.numerator, cur.denominator))
            as deviation,
        if(cur.grain = 'month' and cur.scale <> 'absolute', 0.01,
           scaled_least_noise(cur.measure, cur.scale, abs(cur.usual))) as least_noise
    from with_usual cur
    join series prev
      on prev.metric = cur.metric and prev.grain = cur.grain and prev.dimension = cur.dimension
     and prev.member = cur.member and prev.period_start = cur.previous_start
),

with_noise as (
    select
        *,
        if(grain <> 'month' and sampled_only(measure, scale, previous, denominator), sqrt(2),  -- two samples compared
           greatest(1.4826 * median(abs(deviation)) over earlier, least_noise,
                    if(grain = 'day' and count(deviation) over earlier_days_alike >= $min_history,
                       1.4826 * median(abs(deviation)) over earlier_days_alike, 0))) as noise,
        count(deviation) over earlier as noise_points
    from changes
    window
        earlier as (
            partition by metric, grain, dimension, member
            order by period_start
            rows between $noise_days preceding and 1 preceding
        ),
        earlier_days_alike as (  -- weekends with weekends, working days with working days (days only)
            partition by metric, grain, dimension, member, isodow(period_start) >= 6
            order by period_start
            range between to_days($noise_days) preceding and interval 1 day preceding
        )
),

judged as (
    select
        cur.*,
        abs(cur.deviation) / cur.noise as abs_z,
        abs(prev.deviation) / prev.noise as previous_abs_z
    from with_noise cur
    left join with_noise prev
      on prev.metric = cur.metric and prev.grain = cur.grain and prev.dimension = cur.dimension
     and prev.member = cur.member and prev.period_start = cur.previous_start
)

select
    metric,
    grain,
    dimension,
    member,
    period_start::date as period_start,
    (period_start + period_length(grain) - interval 1 day)::date as period_end,
    value as observed,
    previous as expected,
    case grain when 'day' then 'the same weekday a week earlier' else 'the previous ' || grain end as comparison,
    sign(deviation) * abs_z as strength,
    format(
        'select period_start, value
        from metric_values
        where metric = ''{}'' and grain = ''{}'' and dimension = ''{}'' and member = ''{}'' and period_start in (timestamp ''{}'', timestamp ''{}'')
        order by period_start',
        metric, grain, dimension, replace(member, '''', ''''''), previous_start, period_start
    ) as evidence_sql
from judged
where period_start + period_length(grain) > $since
  and noise_points >= if(grain = 'month', 6, $min_history)  -- half a year of monthly changes before a month can fire
  and abs_z >= $pop_min_z + if(dimension = 'overall', 0, $member_extra_z)
  and sign(deviation_from_usual) = sign(deviation)
  and abs(deviation_from_usual) / noise >= $pop_min_z + if(dimension = 'overall', 0, $member_extra_z)
  and big_enough(measure, scale, comparable, previous_comparable, denominator, level,
                 $min_rel_change * if(grain = 'day', 1, 0.5))  -- sums of many days move less
  and coalesce(previous_abs_z, 0) < $min_abs_z
  and enough_rows(measure, rows, previous_rows, previous, $min_volume)
