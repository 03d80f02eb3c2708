-- What may notify people on one channel this cycle: active insights the cycle added or confirmed, and earlier ones
-- this channel still owes (its last attempt with them was held for quiet hours or failed), at least $min_severity,
-- of $kinds (empty: every kind), most severe first. Prepared answers are no news.
with touched as (
    select memory_id from memory_history
    where cycle_id = $cycle_id and change = 'confirm'
),

attempts as (
    select d.status, d.delivered_at, unnest(d.alerts).insight_id as insight_id
    from deliveries d
    where d.channel = $channel and d.alerts is not null
),

owed as (
    select insight_id
    from attempts
    qualify row_number() over (partition by insight_id order by delivered_at desc) = 1
        and status in ('held', 'failed')
)

select id, kind, title, severity, score, source, fingerprint, metric, dimension, member, supersedes, feedback
from memory
where status = 'active'
    and kind <> 'prepared_answer'
    and (cycle_id = $cycle_id or id in (select memory_id from touched) or id in (select insight_id from owed))
    and severity_rank(severity) <= severity_rank($min_severity)
    and (len($kinds) = 0 or list_contains($kinds, kind))
order by severity_rank(severity), score desc nulls last, id
