-- Every metric as an agent reads it: what it means, how it aggregates, its grains and dimensions, and its value on
-- the newest complete day (overall).
with latest as (
    select metric, day, value
    from daily_values
    where dimension = 'overall'
    qualify row_number() over (partition by metric order by day desc) = 1
)

select
    m.name,
    m.description,
    m.measure,
    m.favourability,
    m.scale,
    m.grains,
    m.dimensions,
    m.goal,
    m.model,
    m.definition,
    latest.day as latest_day,
    latest.value as latest_value
from metrics as m
left join latest on latest.metric = m.name
order by m.name
