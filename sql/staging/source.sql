-- A source as models see it: every landed row except those of quarantined batches.
-- The raw table and the source's name are filled in, quoted, per source by reverie/models.py (a view takes no parameters).
with landed as (
    select * from {{ raw_table }}
),

loaded_batches as (
    select file from batches
    where source = {{ source }} and status = 'loaded'
)

select landed.* exclude (_batch)
from landed
semi join loaded_batches on landed._batch = loaded_batches.file
