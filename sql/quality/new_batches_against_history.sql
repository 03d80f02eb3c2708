-- One cycle's new batches against what the source had before them: each batch's time range, when it arrived (the
-- file's modification time) and how far the source's loaded data reached (for freshness and time windows). A batch
-- that replaces one seen before is a correction: neither stale nor out of its window.
with earlier as (
    select max(last_event) as watermark
    from batches
    where source = $source and status = 'loaded' and cycle_id <> $cycle_id
),

new_batches as (
    select file, rows, first_event, last_event, modified_at
    from batches
    where source = $source and cycle_id = $cycle_id and status = 'loaded'
),

corrections as (
    select distinct batch as file
    from quality_results
    where source = $source and cycle_id <> $cycle_id
)

select
    new_batches.file,
    new_batches.rows,
    new_batches.first_event,
    new_batches.last_event,
    new_batches.modified_at as arrived_at,
    earlier.watermark,
    date_diff('minute', new_batches.last_event, earlier.watermark) / 60.0 as hours_behind
from new_batches
cross join earlier
where new_batches.file not in (select file from corrections)
order by new_batches.file
