-- The rows each metric's measure aggregated over its whole history (the whole business, its first grain), and for a
-- ratio its numerator's total: 0 means its filter never matched.
with totals as (
    select
        metric,
        grain,
        coalesce(sum(volume), 0) as matched,
        coalesce(sum(numerator), 0) as numerator
    from metric_values
    where metric in (select unnest($metrics::varchar[])) and dimension = 'overall'
    group by metric, grain
)

select metric, arg_min(matched, grain) as matched, arg_min(numerator, grain) as numerator
from totals
group by metric
