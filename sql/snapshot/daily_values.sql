-- Every complete daily value, overall and per member: what a question about a level or a change is answered from.
select metric, cast(period_start as date) as day, dimension, member, value, volume
from metric_values
where grain = 'day' and complete
