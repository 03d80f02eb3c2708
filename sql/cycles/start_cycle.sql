-- A cycle begins: a new row, or one taken up again keeps its start and is now this flow run's. (Written as an
-- update and an insert, not an upsert: a lakehouse warehouse has no key to conflict on.)
update cycles set flow_run_id = $flow_run_id, status = 'running' where cycle_id = $cycle_id;
insert into cycles (cycle_id, flow_run_id, started_at)
select $cycle_id, $flow_run_id, $now
where not exists (select 1 from cycles where cycle_id = $cycle_id);
