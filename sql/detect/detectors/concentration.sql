/* detector:
name: concentration
weight: 0.4
describes_change: false
baseline: none
settings: [min_volume]
own_settings:
  concentration_share: {default: 0.5, at_most: 1}  # "a few members carry this share of the total" ...
  concentration_members: {default: 0.25, at_most: 1}  # ... where a few is at most this fraction of the members
neutral: true   # a concentration is neither good nor bad news, whatever the metric
headline: "{member} carry {observed_percent} of {metric} by {dimension} {period} ({comparison}: {expected_percent})."
*/
-- Concentration: in a complete month, a few members of a dimension carry at least
-- $concentration_share of an additive metric — "a few" being at most $concentration_members of
-- the members (so never one of two). Ratios and averages do not add up across members: skipped.
-- Reported when it is new: when the members that carry it now carried a share 10 points or more
-- away from it the month before (or the month before has no data). "Four carriers fly 64% of the
-- flights" is news once, not every month, nor when a fourth member joins the set at the edge.
with shares as (
    select
        v.metric,
        v.dimension,
        v.member,
        v.period_start,
        v.value / sum(v.value) over slice as share,
        count(*) over slice as members,
        sum(v.value) over slice as total,
        row_number() over (partition by v.metric, v.dimension, v.period_start order by v.value desc, v.member) as position
    from metric_values v
    join metrics m on m.name = v.metric
    where v.grain = 'month' and v.complete and v.dimension <> 'overall' and v.value > 0 and isfinite(v.value)
      and m.measure in ('sum', 'count', 'count_distinct')
      and v.period_start + interval 2 month > $since  -- and the month before, to tell what changed
    window slice as (partition by v.metric, v.dimension, v.period_start)
),

carried as (
    select
        *,
        sum(share) over (partition by metric, dimension, period_start order by position) as cumulative_share,
        string_agg(member, ', ') over (partition by metric, dimension, period_start order by position) as top_members
    from shares
),

smallest_set as (
    select *, string_split(top_members, ', ') as carried_by
    from carried
    where cumulative_share >= $concentration_share
      and cumulative_share - share < $concentration_share
      and position <= $concentration_members * members
      and members >= 3
      and total >= $min_volume
),

month_before as (  -- what the same members carried the month before
    select this_month.metric, this_month.dimension, this_month.period_start, sum(earlier.share) as share
    from smallest_set this_month
    join shares earlier
        on earlier.metric = this_month.metric
        and earlier.dimension = this_month.dimension
        and earlier.period_start = this_month.period_start - interval 1 month
    where list_contains(this_month.carried_by, earlier.member)
    group by all
),

months_with_data as (
    select distinct metric, dimension, period_start from shares
),

news as (
    select this_month.*
    from smallest_set this_month
    left join month_before using (metric, dimension, period_start)
    left join months_with_data had_data
        on had_data.metric = this_month.metric
        and had_data.dimension = this_month.dimension
        and had_data.period_start = this_month.period_start - interval 1 month
    where this_month.period_start + interval 1 month > $since
        and (had_data.metric is null or abs(this_month.cumulative_share - coalesce(month_before.share, 0)) >= 0.1)
)

select
    metric,
    'month' as grain,
    dimension,
    top_members as member,
    period_start::date as period_start,
    (period_start + interval 1 month - interval 1 day)::date as period_end,
    cumulative_share as observed,
    position / members as expected,
    format('the share {} of {} members would carry if it were spread evenly', position, members) as comparison,
    (cumulative_share - $concentration_share) / 0.05 as strength,
    format(
        'select member, value, value / sum(value) over () as share, sum(value) over (order by value desc, member rows unbounded preceding) / sum(value) over () as cumulative_share
        from metric_values
        where metric = ''{}'' and grain = ''month'' and dimension = ''{}'' and period_start = timestamp ''{}'' and value > 0
        order by value desc, member',
        metric, dimension, period_start
    ) as evidence_sql
from news
