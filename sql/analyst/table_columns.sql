-- Column names and types of every table and view, in order: what evidence is traced through.
select table_name, column_name, data_type
from duckdb_columns()
where database_name = current_database()
order by table_name, column_index
