-- Every member of a slice with its dimension: what aliases are found for.
select distinct member, dimension
from metric_values
where dimension <> 'overall' and grain = 'day'
