-- Every table and view name the connection knows, in any database (the system's own catalog views included):
-- a name DuckDB would read from its catalog rather than from a CTE out of scope.
select distinct lower(table_name) as name
from duckdb_tables()
union
select distinct lower(view_name)
from duckdb_views()
