-- The names a question is read with: every metric, and every member of a slice with its dimension.
select 'metric' as kind, name, null as dimension
from metrics
union all
select distinct 'member' as kind, member as name, dimension
from daily_values
where dimension <> 'overall'
