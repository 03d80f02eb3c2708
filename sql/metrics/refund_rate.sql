-- metric: refund_rate
-- description: Share of orders refunded.
-- measure: ratio
-- favourability: down
-- dimensions: country, channel, device, category
with orders as (
    select * from stg_events
    where event_type = 'order' and event_date >= $since
)

select
    event_date as period_start,
    country,
    channel,
    device,
    category,
    (status = 'refunded')::int as numerator,
    1 as denominator
from orders
