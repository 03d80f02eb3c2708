-- Whether a table or a (user) view named $name exists in the warehouse: one count each.
select count(*) from duckdb_tables() where table_name = $name and database_name = current_database()
union all
select count(*) from duckdb_views() where view_name = $name and not internal
