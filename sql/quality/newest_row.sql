-- A source's newest loaded row and when the batch holding it arrived: its file's modification time
-- (for a DuckDB table, when reverie read it).
select last_event, modified_at as arrived_at
from batches
where source = $source and status = 'loaded' and last_event is not null
order by last_event desc, modified_at desc
limit 1
