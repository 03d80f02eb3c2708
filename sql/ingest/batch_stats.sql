-- Rows and event-time range of each batch just loaded into a source's raw table.
select
    _batch,
    count(*) as rows,
    min({{ time_column }}) as first_event,
    max({{ time_column }}) as last_event
from {{ raw_table }}
where _batch in (select unnest($batches::varchar[]))
group by _batch
