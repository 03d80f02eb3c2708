-- Active pace-to-goal items about a metric, the newest first.
select id, title
from memory
where status = 'active' and metric = $metric and kind = 'pace_to_goal'
order by period_start desc nulls last
limit 1
