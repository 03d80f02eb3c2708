-- A source as models see it: every landed row except those of quarantined batches, its time column in the
-- project's local time (an instant cut in the project's zone, not UTC: a local evening stays on its day).
-- The raw table, the source's name and the time column's replacement are filled in per source by reverie/models.py
-- (a view takes no parameters).
with landed as (
    select * from {{ raw_table }}
),

loaded_batches as (
    select batch_id from batches
    where source = {{ source }} and status = 'loaded'
)

select landed.* exclude (_batch) {{ local_time }}
from landed
semi join loaded_batches on landed._batch = loaded_batches.batch_id
