-- The rows each metric's measure aggregated over its whole history (the whole business, its first grain), and for a
-- ratio its numerator's total: 0 means its filter never matched.
with first_grain as (
    select metric, min(grain) as grain
    from metric_values
    where metric in (select unnest($metrics::varchar[]))
    group by metric
)

select
    metric_values.metric,
    coalesce(sum(volume), 0) as matched,
    coalesce(sum(numerator), 0) as numerator
from metric_values
join first_grain using (metric, grain)
where dimension = 'overall'
group by metric_values.metric
