-- The newest complete day of the metrics: what "yesterday", "last Tuesday" and "last week" in an insight resolve
-- against.
select max(cast(period_start as date)) as latest_day
from metric_values
where grain = 'day' and complete
