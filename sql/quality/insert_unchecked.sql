-- This cycle's loaded batches of a source that no check looked at, one row each, with why: the brief and the analyst
-- say "unchecked" for them, never "passed". Severity 'unchecked' is neither a failure nor a pass.
insert into quality_results (cycle_id, suite, source, batch, expectation, severity, success, checked_at, message)
select $cycle_id, $suite, $source, file, 'suite', 'unchecked', false, $now, $why
from batches
where source = $source and cycle_id = $cycle_id and status = 'loaded'
