/* detector:
name: pace_to_goal
weight: 0.9
describes_change: false
baseline: none
settings: []
own_settings:
  goal_tolerance: 0.05  # projected this far off the goal (a fraction of it) is news
headline: "{metric} is on pace for {observed} {period}, {ahead_or_behind} its goal of {expected} ({change})."
*/
-- Pace to goal: for an additive metric with a goal, the current month (or week) so far plus a short
-- seasonal-naive forecast of its remaining days (each the median of the same weekday over the
-- last four weeks) against the goal. Reported when the projection misses or beats the goal by at
-- least $goal_tolerance, once three days of the period are in.
with goals as (
    select name as metric, (goal ->> 'value')::double as goal, coalesce(goal ->> 'grain', 'month') as grain
    from metrics
    where goal is not null and measure in ('sum', 'count', 'count_distinct')
),

days as (
    select v.metric, v.period_start::date as day, v.value
    from metric_values v
    join goals using (metric)
    where v.grain = 'day' and v.dimension = 'overall' and v.complete and isfinite(v.value)
      and v.period_start <= coalesce($as_of::timestamp, v.period_start)
),

latest as (
    select metric, max(day) as as_of
    from days
    group by metric
),

periods as (
    select
        goals.*,
        latest.as_of,
        date_trunc(goals.grain, latest.as_of)::date as period_start,
        (date_trunc(goals.grain, latest.as_of) + if(goals.grain = 'week', interval 7 day, interval 1 month)
            - interval 1 day)::date as period_end
    from goals
    join latest using (metric)
),

so_far as (
    select p.metric, sum(d.value) as value, count(*) as elapsed_days
    from periods p
    join days d on d.metric = p.metric and d.day between p.period_start and p.as_of
    group by all
),

remaining as (
    select p.metric, unnest(generate_series(p.as_of + 1, p.period_end, interval 1 day))::date as day
    from periods p
    where p.as_of < p.period_end
),

forecast as (
    select r.metric, sum(typical.value) as value
    from remaining r
    join periods p using (metric)
    join lateral (
        select median(d.value) as value
        from days d
        where d.metric = r.metric and dayofweek(d.day) = dayofweek(r.day) and d.day > p.as_of - 28
    ) as typical on true
    group by all
)

select
    p.metric,
    p.grain,
    'overall' as dimension,
    'all' as member,
    p.period_start,
    p.period_end,
    s.value + coalesce(f.value, 0) as observed,
    p.goal as expected,
    format('the {} goal; {} of {} days in, the rest forecast from the same weekday over the last 4 weeks',
           p.grain, s.elapsed_days, date_diff('day', p.period_start, p.period_end) + 1) as comparison,
    ((s.value + coalesce(f.value, 0)) / p.goal - 1) / $goal_tolerance as strength,
    format(
        'with days as (select period_start::date as day, value from metric_values where metric = ''{0}'' and grain = ''day'' and dimension = ''overall'' and complete and period_start <= timestamp ''{2}''),
        so_far as (select sum(value) as value from days where day >= date ''{1}''),
        rest as (select unnest(generate_series(date ''{2}'' + 1, date ''{3}'', interval 1 day))::date as day),
        forecast as (select sum((select median(d.value) from days d where dayofweek(d.day) = dayofweek(rest.day) and d.day > date ''{2}'' - 28)) as value from rest)
        select so_far.value as so_far, coalesce(forecast.value, 0) as forecast, so_far.value + coalesce(forecast.value, 0) as projected
        from so_far, forecast',
        p.metric, p.period_start, p.as_of, p.period_end
    ) as evidence_sql
from periods p
join so_far s using (metric)
left join forecast f using (metric)
where p.as_of >= $since
  and s.elapsed_days >= 3
  and abs((s.value + coalesce(f.value, 0)) / p.goal - 1) >= $goal_tolerance
