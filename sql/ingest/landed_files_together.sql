-- Several landed files in one read of their format's reader, each row given its file's batch number.
with landed as (
    select * from {{ reader }}
),

numbered as (
    select unnest($path::varchar[]) as filename, unnest($batches::bigint[]) as batch
)

select landed.* exclude (filename), numbered.batch as _batch
from landed
join numbered using (filename)
