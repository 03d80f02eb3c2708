-- Close active items (superseded, retracted, expired) at once, each with the reason in its history: one statement
-- each, whatever their number (on a lake every statement is a round of the catalog's).
update memory set status = $status, closed_at = $now where id in (select unnest($ids::varchar[]));
insert into memory_history (memory_id, change, field, old_value, new_value, changed_at, cycle_id)
select unnest($ids::varchar[]), $change, 'status', 'active', $reason, $now, $cycle_id;
