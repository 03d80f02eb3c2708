-- metric: sessions
-- description: Visits to the shop.
-- measure: sum
-- favourability: up
-- dimensions: country, channel, device
with sessions as (
    select * from stg_events
    where event_type = 'session' and event_date >= $since
)

select
    event_date as period_start,
    country,
    channel,
    device,
    1 as numerator,
    null::double as denominator
from sessions
