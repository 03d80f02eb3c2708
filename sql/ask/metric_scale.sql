-- How a metric's changes are read (its scale) and how it aggregates (its measure).
select scale, measure
from metrics
where name = $metric
