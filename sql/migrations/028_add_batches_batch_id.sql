-- Each batch's number, unique within its source: the raw table's `_batch` holds it, an integer being far cheaper
-- to write on every row, and to find rows by, than the batch's name. Batches loaded before it are numbered in the
-- order they were loaded; their rows take the numbers at their source's next ingest.
alter table batches add column if not exists batch_id bigint;

update batches set batch_id = numbered.batch_id
from (
    select source, file, row_number() over (partition by source order by loaded_at, file) as batch_id
    from batches
) as numbered
where batches.source = numbered.source and batches.file = numbered.file;
