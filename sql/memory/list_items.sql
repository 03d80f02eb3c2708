-- Memory items for people: most severe and highest scored first, within a status and a kind (prepared answers
-- only when asked for by kind).
select
    id, kind, title, body, status, severity, score, metric, dimension, member,
    strftime(period_start, '%Y-%m-%d') as period,
    source, cycle_id, flow_run_id,
    strftime(recorded_at, '%Y-%m-%dT%H:%M:%S') as recorded_at,
    strftime(last_confirmed, '%Y-%m-%dT%H:%M:%S') as last_confirmed,
    evidence
from memory
where ($status = 'all' or status = $status)
    and (kind = $kind or ($kind is null and kind <> 'prepared_answer'))
order by severity_rank(severity), score desc nulls last, recorded_at desc
limit $limit
