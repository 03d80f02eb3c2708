-- What a question about a metric needs to know of it: the dimensions it is broken down by, how it aggregates,
-- which way is good, and whether it has a goal.
select name, dimensions, measure, favourability, goal is not null as goal
from metrics
