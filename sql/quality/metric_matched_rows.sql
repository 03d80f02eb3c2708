-- The rows a metric's measure aggregated over its whole history (the whole business, its first grain), and for a
-- ratio its numerator's total: 0 means its filter never matched.
with first_grain as (
    select min(grain) as grain from metric_values where metric = $metric
)

select coalesce(sum(volume), 0) as matched, coalesce(sum(numerator), 0) as numerator
from metric_values
where metric = $metric and dimension = 'overall' and grain = (select grain from first_grain)
