-- What the brief shows: active insights (data quality and prepared answers aside) this cycle added or confirmed, most severe first.
with touched as (
    select memory_id from memory_history
    where cycle_id = $cycle_id and change = 'confirm'
)

select id, kind, title, body, severity, score, source, fingerprint, coalesce(linked_ids, []) as linked_ids,
    metric, dimension, member, valid_from, valid_to, evidence
from memory
where status = 'active'
    and kind not in ('data_quality', 'prepared_answer')
    and (cycle_id = $cycle_id or id in (select memory_id from touched))
order by severity_rank(severity), score desc nulls last
limit $limit
