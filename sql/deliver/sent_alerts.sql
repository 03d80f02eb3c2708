-- The alerts one channel delivered since $since, newest first: a subject among them is not alerted again, and a
-- new value of one is sent as an update.
with sent as (
    select d.delivered_at, unnest(d.alerts) as alert
    from deliveries d
    where d.channel = $channel and d.status = 'sent' and d.delivered_at >= $since and d.alerts is not null
)

select alert.insight_id, alert.fingerprint, alert.title, delivered_at
from sent
order by delivered_at desc
