-- describe_metric: a metric's definition. Run in the sandbox, which takes no parameters: the name is a quoted literal.
select name, description, measure, favourability, grains, dimensions, goal
from metrics
where name = {{ metric }}
