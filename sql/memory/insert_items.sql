-- New active memory items at once, one list per column, an item per position, and each one's insert in its
-- history: one statement each, whatever their number (on a lake every statement is a round of the catalog's).
insert into memory (
    id, fingerprint, kind, title, body, metric, dimension, member, period_start, severity, score, status,
    valid_from, valid_to, recorded_at, closed_at, first_seen, last_confirmed, supersedes, superseded_by,
    related_ids, evidence, source, cycle_id, flow_run_id, feedback, answer_key
)
select
    unnest($id::varchar[]),
    unnest($fingerprint::varchar[]),
    unnest($kind::varchar[]),
    unnest($title::varchar[]),
    unnest($body::varchar[]),
    unnest($metric::varchar[]),
    unnest($dimension::varchar[]),
    unnest($member::varchar[]),
    unnest($period_start::date[]),
    unnest($severity::varchar[]),
    unnest($score::double[]),
    unnest($status::varchar[]),
    unnest($valid_from::date[]),
    unnest($valid_to::date[]),
    unnest($recorded_at::timestamp[]),
    unnest($closed_at::timestamp[]),
    unnest($first_seen::timestamp[]),
    unnest($last_confirmed::timestamp[]),
    unnest($supersedes::varchar[]),
    unnest($superseded_by::varchar[]),
    unnest($related_ids::varchar[][]),
    unnest($evidence::varchar[])::json,
    unnest($source::varchar[]),
    unnest($cycle_id::varchar[]),
    unnest($flow_run_id::varchar[]),
    unnest($feedback::varchar[]),
    unnest($answer_key::varchar[]);
insert into memory_history (memory_id, change, field, old_value, new_value, changed_at, cycle_id)
select unnest($id::varchar[]), 'insert', null, null, unnest($title::varchar[]), $now, $history_cycle_id;
