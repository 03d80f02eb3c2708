-- How each recomputed metric's changes are read, unless its declaration says (`scale:`): a share (a ratio of two
-- counts) in percentage points; a count relative to what was expected, on a log scale; a sum, average, min, max
-- or other ratio relative too while its values stay positive, and in its own units (absolute) once any value is
-- negative: a move across zero is not "down 128%", and a log scale hides the tail of a signed quantity (delays,
-- margins). One statement for all of them: $metric, $declared and $shares are lists, a metric per position.
with asked as (
    select
        unnest($metric::varchar[]) as metric,
        unnest($declared::varchar[]) as declared,
        unnest($shares::boolean[]) as shares
),

values_seen as (
    select metric, min(value) as lowest
    from metric_values
    where metric in (select metric from asked) and isfinite(value)
    group by metric
),

inferred as (
    select
        asked.metric,
        case
            when asked.declared is not null then asked.declared
            when asked.shares then 'points'
            when metrics.measure in ('count', 'count_distinct') then 'relative'
            when values_seen.lowest < 0 then 'absolute'
            else 'relative'
        end as scale
    from asked
    join metrics on metrics.name = asked.metric
    left join values_seen on values_seen.metric = asked.metric
)

update metrics
set scale = inferred.scale
from inferred
where metrics.name = inferred.metric and metrics.scale is distinct from inferred.scale
