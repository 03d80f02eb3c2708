-- The metrics as a question reads them: each with the scale its changes are read in.
select name, description, measure, favourability, dimensions, goal, metric_scale(scale, measure) as scale
from metrics
