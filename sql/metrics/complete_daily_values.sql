-- Every metric's complete daily values, overall: what the brief's summary compares week on week.
select metric, period_start as day, value
from metric_values
where grain = 'day' and dimension = 'overall' and complete
