-- The insights a cycle wrote (new, or superseding what memory held) that people should hear of: warnings and
-- critical ones still active, one `reverie.insight.risk` event each.
select
    id, kind, title, severity, score, metric, dimension, member,
    strftime(period_start, '%Y-%m-%d') as period,
    supersedes,
    source
from memory
where cycle_id = $cycle_id
    and status = 'active'
    and severity in ('warning', 'critical')
    and kind <> 'prepared_answer'
order by severity_rank(severity), score desc nulls last
