-- The definition of each of the warehouse's own views: which tables a metric's model reads.
select view_name, sql
from duckdb_views()
where database_name = current_database() and not internal and not temporary
