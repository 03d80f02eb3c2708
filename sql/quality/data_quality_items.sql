-- This cycle's quality findings, one per batch (or source, or metric), for memory and the brief.
with failures as (
    select source, batch, severity, message, expectation
    from quality_results
    where cycle_id = $cycle_id and not success and severity <> 'unchecked'  -- unchecked: said apart, never a pass
),

rejected as (  -- files ingest could not load at all
    select source, file as batch, 'error' as severity, reason as message, 'readable' as expectation
    from batches
    where cycle_id = $cycle_id and status = 'rejected'
),

findings as (
    select * from failures
    union all
    select * from rejected
)

select
    findings.source,
    findings.batch,
    max(case findings.severity when 'error' then 2 else 1 end) = 2 as held_back,
    string_agg(findings.message, '; ' order by findings.severity, findings.expectation) as reasons,
    list(distinct findings.expectation order by findings.expectation) as checks,
    min(batches.first_event)::date as period_start
from findings
left join batches on batches.source = findings.source and batches.file = findings.batch
group by findings.source, findings.batch
order by held_back desc, findings.source, findings.batch
