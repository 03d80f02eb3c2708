-- metric: conversion_rate
-- description: Paid orders per session.
-- measure: ratio
-- favourability: up
-- dimensions: country, channel, device
with events as (
    select * from stg_events
    where event_type in ('session', 'order') and event_date >= $since
)

select
    event_date as period_start,
    country,
    channel,
    device,
    (event_type = 'order' and status = 'paid')::int as numerator,
    (event_type = 'session')::int as denominator
from events
