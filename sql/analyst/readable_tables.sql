-- The warehouse's own tables and views: what the analyst's SQL may name (temporary ones are the sandbox's).
select table_name as name
from duckdb_tables()
where database_name = current_database() and not temporary
union
select view_name
from duckdb_views()
where database_name = current_database() and not internal and not temporary
