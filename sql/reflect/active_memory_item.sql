-- One active memory item by id, as an insight that cites, updates or retracts it sees it (data-quality items excluded).
select id, kind, metric, dimension, member, period_start, severity, status
from memory
where id = $memory_id
  and status = 'active'
  and kind <> 'data_quality'
