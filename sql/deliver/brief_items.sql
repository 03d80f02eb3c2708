-- What the brief shows: active insights (data quality and prepared answers aside) this cycle added or confirmed;
-- what it added first ('new', or 'changed' when it replaced an earlier item of the same subject), then what is
-- still open; most severe first within each.
with touched as (
    select memory_id from memory_history
    where cycle_id = $cycle_id and change = 'confirm'
)

select id, kind, title, body, severity, score, source, fingerprint, coalesce(linked_ids, []) as linked_ids,
    metric, dimension, member, valid_from, valid_to, evidence,
    case when cycle_id <> $cycle_id then null when supersedes is null then 'new' else 'changed' end as news
from memory
where status = 'active'
    and kind not in ('data_quality', 'prepared_answer')
    and (cycle_id = $cycle_id or id in (select memory_id from touched))
order by news is null, severity_rank(severity), score desc nulls last
limit $limit
