-- The rows of some of a source's batches, as great-expectations reads them in the database: the checked
-- columns (all of them when no check names one) and the batch each row came from, so failures come back per
-- batch. Written out whole (batch names as literals): great-expectations runs it as a query asset.
select {{ columns }}, _batch
from {{ raw_table }}
where _batch in ({{ batches }})
