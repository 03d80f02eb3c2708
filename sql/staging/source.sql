-- A source as models see it: every landed row except those of quarantined batches.
-- The braced names are filled in per source by tasks/models.py.
with landed as (
    select * from {raw_table}
),

loaded_batches as (
    select file from batches
    where source = '{source}' and status = 'loaded'
)

select landed.* exclude (_batch)
from landed
semi join loaded_batches on landed._batch = loaded_batches.file
