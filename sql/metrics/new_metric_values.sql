-- New values of several metrics at one grain: the union of their metric.sql queries, one statement
-- so DuckDB plans it once. A period is complete once the data reaches its end, less the grace.
select
    m.*,
    coalesce(m.period_start + ('1 ' || $grain)::interval <= $watermark + to_minutes($grace), false) as complete,
    $cycle_id as cycle_id
from ({{ metric_queries }}) as m
