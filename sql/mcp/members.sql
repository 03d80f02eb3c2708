-- The members of one dimension of a metric that have values.
select distinct member
from period_values
where metric = $metric and dimension = $dimension
order by member
