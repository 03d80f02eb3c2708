-- Every metric's complete daily values, overall, with how its changes read and which way is good: what the brief's
-- summary compares week on week.
select v.metric, v.period_start as day, v.value, metric_scale(m.scale, m.measure) as scale, m.favourability
from metric_values v
join metrics m on m.name = v.metric
where v.grain = 'day' and v.dimension = 'overall' and v.complete
