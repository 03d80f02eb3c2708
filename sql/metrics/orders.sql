-- metric: orders
-- description: Paid orders.
-- measure: sum
-- favourability: up
-- dimensions: country, channel, device, category
with paid_orders as (
    select * from stg_events
    where event_type = 'order' and status = 'paid' and event_date >= $since
)

select
    event_date as period_start,
    country,
    channel,
    device,
    category,
    1 as numerator,
    null::double as denominator
from paid_orders
