-- Freshness of one cycle's new batches: how far each one's newest row lies behind the data the
-- source already had. A batch that replaces one seen before is a correction, never stale.
with earlier as (
    select max(last_event) as watermark
    from batches
    where source = $source and status = 'loaded' and cycle_id <> $cycle_id
),

new_batches as (
    select file, rows, last_event
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
    new_batches.last_event,
    earlier.watermark,
    date_diff('minute', new_batches.last_event, earlier.watermark) / 60.0 as hours_behind
from new_batches
cross join earlier
where new_batches.file not in (select file from corrections)
