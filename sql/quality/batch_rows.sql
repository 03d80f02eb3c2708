-- The rows of some of a source's batches, as great-expectations reads them: the checked columns (all
-- of them when no check names one) and the batch each row came from, so failures come back per batch.
select {{ columns }}, _batch
from {{ raw_table }}
where _batch in (select unnest($batches::varchar[]))
