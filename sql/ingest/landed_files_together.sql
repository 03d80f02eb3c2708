-- Several landed files in one read of their format's reader, each row given its file's batch name.
with landed as (
    select * from {{ reader }}
),

named as (
    select unnest($path::varchar[]) as filename, unnest($batches::varchar[]) as batch
)

select landed.* exclude (filename), named.batch as _batch
from landed
join named using (filename)
