-- Rows and event-time range of each batch just loaded into a source's raw table (by its number), in the project's
-- local time.
select
    _batch,
    count(*) as rows,
    min({{ local_time }}) as first_event,
    max({{ local_time }}) as last_event
from {{ raw_table }}
where _batch in (select unnest($batches::bigint[]))
group by _batch
