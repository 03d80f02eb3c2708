-- Volume of one cycle's new batches: each one's rows per hour of data it covers (so a day still
-- filling up is not a drop) against the median rate of the source's batches before it in time,
-- over the last $history of them.
with loaded as (
    select
        file,
        rows,
        first_event,
        cycle_id,
        rows / greatest(date_diff('second', first_event, last_event) / 3600.0, 1.0) as rows_per_hour
    from batches
    where source = $source and status = 'loaded'
),

with_history as (
    select
        file,
        rows,
        rows_per_hour,
        cycle_id,
        median(rows_per_hour) over earlier as usual_per_hour,
        count(*) over earlier as history
    from loaded
    window earlier as (order by first_event, file rows between $history preceding and 1 preceding)
)

select file, rows, rows_per_hour, usual_per_hour, history, rows_per_hour / nullif(usual_per_hour, 0) as ratio
from with_history
where cycle_id = $cycle_id
