-- Every complete daily value, overall and per member, with a ratio's parts: what a question about a level, a
-- change or a span of days is answered from.
select metric, cast(period_start as date) as day, dimension, member, value, numerator, denominator, volume
from metric_values
where grain = 'day' and complete
