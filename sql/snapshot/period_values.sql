-- Every value by day, week and month, overall and per member, complete or not: what a metric's history is read
-- from (hours stay in the warehouse: 24 times the rows for a view nobody asks of a night's snapshot).
select metric, grain, cast(period_start as date) as period_start, dimension, member, value, volume, complete
from metric_values
where grain in ('day', 'week', 'month')
