-- One insight an analyst wrote and the grounding check accepted (a retraction too); consolidation moves it into memory.
insert into agent_insights (
    insight_id, cycle_id, kind, title, body, severity, metric, dimension, member, period_start,
    candidate_ids, evidence, source, written_at, supersedes, retracts
)
values (
    $insight_id, $cycle_id, $kind, $title, $body, $severity, $metric, $dimension, $member, $period_start,
    $candidate_ids, $evidence, $source, $written_at, $supersedes, $retracts
)
