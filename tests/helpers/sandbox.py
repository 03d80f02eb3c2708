"""Where the analyst's SQL sandbox is tried: a warehouse with a memory row to protect, the tables a statement may
name, and every escape we know of."""

from __future__ import annotations

from pathlib import Path

from reverie.lake import Lake
from reverie.warehouse import Warehouse

TABLES = {"orders", "memory"}

# every way out we know of: files, URLs, other databases, extensions, settings, catalog paths, writes
ESCAPES = [
    "select 1; select 2",
    "select * from memory; drop table memory",
    "drop table memory",
    "delete from memory",
    "update memory set title = 'x'",
    "insert into memory (id) values ('x')",
    "create table t as select 1",
    "attach '{dir}/evil.duckdb' as evil",
    "install httpfs",
    "load httpfs",
    "copy memory to '{dir}/stolen.csv'",
    "copy (select * from memory) to '{dir}/stolen.parquet' (format parquet)",
    "export database '{dir}/exported'",
    "pragma database_list",
    "pragma show_tables",
    "set enable_external_access = true",
    "reset lock_configuration",
    "call pragma_version()",
    "select * from read_csv('/etc/passwd')",
    "select * from read_csv_auto('/etc/passwd')",
    "select * from read_text('/etc/hostname')",
    "select * from read_blob('{warehouse}')",
    "select * from read_json_objects('/etc/hostname')",
    "select * from read_parquet('{warehouse}')",
    "select * from parquet_file_metadata('{warehouse}')",
    "select * from parquet_schema('{warehouse}')",
    "select * from sniff_csv('/etc/passwd')",
    "select * from glob('/etc/*')",
    "select (select count(*) from glob('/etc/*'))",
    "select * from '/etc/passwd'",
    "select * from \"/etc/passwd\"",
    "select * from '{warehouse}'",
    "select * from 'https://example.com/x.csv'",
    "select * from 'http://127.0.0.1:9/x.parquet'",
    "with t as (select * from read_csv('/etc/passwd')) select * from t",
    "select * from orders where id in (select 1 from read_text('/etc/hostname'))",
    "select * from orders /* */ union all select * from read_text('/etc/hostname')",
    "select * from duckdb_databases()",
    "select * from system.main.duckdb_databases()",
    "select path from duckdb_databases()",
    "select * from pragma_database_list",
    "select * from system.main.pragma_database_list",
    "select * from duckdb_settings()",
    "select * from system.main.duckdb_settings()",
    "select * from pg_settings",
    "select * from duckdb_extensions()",
    "select * from duckdb_secrets()",
    "select * from duckdb_temporary_files()",
    "select current_setting('temp_directory')",
    "select system.main.current_setting('secret_directory')",
    "select current_setting('allowed_paths')",
    "select getenv('HOME')",
    "select * from query('select * from read_text(''/etc/hostname'')')",
    "select * from query_table('memory')",
    "select * from which_secret('s3://x', 's3')",
    "select * from json_execute_serialized_sql('{{}}')",
    "select * from (summarize '/etc/passwd')",
    "with t as (summarize '{warehouse}') select * from t",
    "from (summarize 'https://example.com/x.csv')",
    "select error(path) from system.main.duckdb_databases()",
    "select error(system.main.current_setting('secret_directory'))",
    "select path::blob from system.main.duckdb_databases()",
    "select replace(path, '/', '|') from system.main.duckdb_databases()",
    "select string_agg(c, '.') from (select unnest(string_split(path, '/')) as c from system.main.duckdb_databases())",
    # encoded: no check of the results can recognise these, so they must not run
    "select to_base64(path::blob) from system.main.duckdb_databases()",
    "select reverse(path) from system.main.duckdb_databases()",
    "select to_base64(encode(system.main.current_setting('secret_directory')))",
    "select reverse(system.main.current_setting('temp_directory'))",
    "select md5(file) = md5(file), reverse(file) from system.main.pragma_database_list",
    "select to_base64(target::blob) from deliveries",
    "select reverse(stages::varchar) from main.cycles",
    "select * from (with deliveries as (select 1) select 1), deliveries",
    "with x as (select 1) select * from \"/etc/passwd\"",
]


def new_warehouse(folder: Path, lake: bool = False) -> Warehouse:
    """A warehouse in `folder` (a file, or a DuckLake with a SQLite catalog) with reverie's schema, one memory row
    to protect, and some data."""
    warehouse = Warehouse(folder / "warehouse.duckdb",
                          lake=Lake(f"sqlite:{folder}/lake.sqlite", f"{folder}/lake/") if lake else None)
    with warehouse.connect() as con:
        con.execute("create table orders as select range as id, range % 7 as day from range(1000)")
        con.execute("""insert into memory (id, fingerprint, kind, title, severity, status, recorded_at, first_seen,
                       last_confirmed, source, cycle_id) values ('mem-1', 'f', 'pattern', 'kept', 'info', 'active',
                       now(), now(), now(), 'test', 'c0')""")
    return warehouse
