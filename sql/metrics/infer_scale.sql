-- How a metric's changes are read, unless its declaration says (`scale:`): a share (a ratio of two counts) in
-- percentage points; a count relative to what was expected, on a log scale; a sum, average, min, max or other
-- ratio relative too while its values stay positive, and in its own units (absolute) once any value is negative:
-- a move across zero is not "down 128%", and a log scale hides the tail of a signed quantity (delays, margins).
with values_seen as (
    select min(value) as lowest
    from metric_values
    where metric = $metric and isfinite(value)
)

update metrics
set scale = case
    when $declared is not null then $declared
    when $shares then 'points'
    when measure in ('count', 'count_distinct') then 'relative'
    when (select lowest from values_seen) < 0 then 'absolute'
    else 'relative'
end
where name = $metric
