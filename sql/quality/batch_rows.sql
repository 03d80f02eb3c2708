-- The rows of some of a source's batches, as great-expectations reads them in the database: the checked
-- columns (all of them when no check names one) and the number of the batch each row came from, so failures come
-- back per batch. Written out whole (batch numbers as literals): great-expectations runs it as a query asset, which
-- must begin with `select` (so no CTEs here).
-- Rows are found by their time as well as their batch, so DuckDB skips the rest of the table by either. Rows
-- without a time are read apart, skipped the same way where there are none.
select {{ columns }}, _batch
from {{ raw_table }}
where _batch in ({{ batches }}) and {{ local_time }} between {{ first_event }} and {{ last_event }}
union all
select {{ columns }}, _batch
from {{ raw_table }}
where _batch in ({{ batches }}) and {{ local_time }} is null
