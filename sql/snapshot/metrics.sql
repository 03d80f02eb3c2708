-- The metrics as a question reads them: each with the scale its changes are read in, its grains and where it is
-- declared.
select name, description, measure, favourability, grains, dimensions, goal, metric_scale(scale, measure) as scale,
    model, definition
from metrics
