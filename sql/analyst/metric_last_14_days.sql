-- describe_metric: a metric's last 14 days for the whole business, newest first (run in the sandbox, like run_sql).
select period_start::date as day, value
from metric_values
where metric = {{ metric }}
  and grain = 'day'
  and dimension = 'overall'
order by period_start desc
limit 14
