"""Every way out of the analyst's SQL sandbox we could enumerate, on a real warehouse file.

What is proven, attempt by attempt (each is one case):
- every table function and table macro DuckDB has (the built-in ones and those of the extensions that ship offline
  in packages, listed from `duckdb_functions()` when the tests are collected), called with a file of this machine,
  the warehouse itself or a URL, is refused by the sandbox — all but range, generate_series and unnest, which read
  nothing and are allowed; through the connection lock alone (the statement check skipped) it fails, or shows
  nothing private and changes nothing;
- every scalar function that reads files or tells paths, settings, the environment or the catalog shows nothing
  private and changes nothing, through both locks and through the connection alone;
- statements of every other shape (COPY, ATTACH, INSTALL, PRAGMA, SET, CALL, EXPORT, CREATE ..., several statements,
  comment, CTE, quoting, case and homoglyph tricks, replacement scans, catalog views, huge and deeply nested
  statements) are refused by the statement check alone with a reason, within a second or two, and by the connection
  alone fail or show nothing private and change nothing.

Private means: the warehouse's folder, the working folder, the home folder, the content of a file outside the
warehouse (/etc/passwd, a planted file) and the value of an environment variable. Changed means: any byte of the
warehouse file (a row, the catalog), or a file written beside the warehouse, in the working folder or beside the
planted file. What tests/test_sandbox.py already tries is left to it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from reverie.analyst.sandbox import (
    PURE_TABLE_FUNCTIONS,
    SandboxError,
    check_statement,
    fetch,
    run_query,
    sandbox_connection,
)
from reverie.warehouse import Warehouse
from tests.helpers.sandbox import ESCAPES, TABLES, new_warehouse

pytestmark = pytest.mark.without_prefect

SECRET_VARIABLE = "REVERIE_TEST_SANDBOX_SECRET"
SECRET_VALUE = "env-secret-6b2d1f0e"
OUTSIDE_CONTENT = "outside-secret-91c4a7"
URL = "http://127.0.0.1:9/x"  # the discard port: nothing listens


def offline_extensions() -> list[Path]:
    """The DuckDB extensions that ship in Python packages (duckdb-extension-*), loadable offline by path."""
    found = []
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("duckdb-extension-"):
            spec = importlib.util.find_spec(name.replace("-", "_"))
            if spec is not None and spec.origin is not None:
                found += sorted(Path(spec.origin).parent.glob("extensions/*/*.duckdb_extension"))
    return found


def duckdb_catalog() -> duckdb.DuckDBPyConnection:
    """A plain in-memory DuckDB with what it autoloads and every extension that ships offline loaded."""
    con = duckdb.connect()
    for path in offline_extensions():
        con.execute(f"load '{path}'")
    return con


CATALOG = duckdb_catalog()
LOADED_EXTENSIONS = [name for (name,) in CATALOG.execute(
    "select extension_name from duckdb_extensions() where loaded order by 1").fetchall()]

# a target for a function's first text argument: something outside the data, or the warehouse itself
TARGETS = ["/etc/passwd", "{outside}", "{warehouse}", URL]
# what a function gets for an argument of each type when nothing more plausible is known
ARGUMENTS = {"BIGINT": "3", "UBIGINT": "3", "INTEGER": "3", "UINTEGER": "3", "DOUBLE": "0.5", "BOOLEAN": "true",
             "TIMESTAMP": "timestamp '2026-01-01'", "TIMESTAMP WITH TIME ZONE": "timestamptz '2026-01-01'",
             "INTERVAL": "interval 1 day", "JSON": "'{\"a\": 1}'", "ANY": "'x'", "TABLE": "(select * from memory)",
             "POINTER": "0", "VARCHAR": "'x'", "VARCHAR[]": "['x']", None: "'memory'"}
SERIALIZED_READ = CATALOG.execute("select json_serialize_sql('select * from read_text(''/etc/passwd'')')").fetchone()[0]
# functions whose first text argument is not a file: what a hostile model would pass them instead
PLAUSIBLE = {
    "checkpoint": ["'warehouse'"], "force_checkpoint": ["'warehouse'"],
    "duckdb_table_sample": ["'memory'"], "pragma_table_info": ["'memory'"], "pragma_show": ["'memory'"],
    "pragma_storage_info": ["'memory'"], "pragma_metadata_info": ["'warehouse'"],
    "query": ["'select * from read_text(''/etc/passwd'')'", "'select * from duckdb_databases()'",
              "'select current_setting(''temp_directory'')'"],
    "query_table": ["'memory'", "['memory', 'orders']", "'/etc/passwd'", "'{warehouse}'"],
    "json_execute_serialized_sql": ["'" + SERIALIZED_READ.replace("'", "''") + "'"],
    "which_secret": ["'s3://bucket/x', 's3'", f"'{URL}', 'http'"],
    "json_each": ["'{\"a\": 1}'"], "json_tree": ["'{\"a\": 1}'"],
    "unnest": ["[1, 2, 3]"], "repeat": ["'x', 3"], "repeat_row": ["1, 2, num_rows = 3"],
    "range": ["3"], "generate_series": ["3"],
    "histogram": ["'memory', title", "'/etc/passwd', column0"],
    "histogram_values": ["'memory', title", "'/etc/passwd', column0"],
    "duckdb_logs_parsed": ["'QueryLog'"],
}
# and calls whose named parameters write somewhere or read another table
NAMED_CALLS = [
    "select * from enable_logging(storage = 'file', storage_path = '{dir}/duckdb-logs')",
    "select * from enable_profiling(format = 'json', save_location = '{dir}/profile.json')",
    "select * from read_csv('{outside}', store_rejects = true, rejects_table = 'memory')",
    "select * from read_csv('{outside}', filename = true, columns = {'name': 'varchar', 'value': 'int'})",
    "select * from read_duckdb('{warehouse}', table_name = 'memory')",
    "select * from read_parquet('{dir}/*.parquet', hive_partitioning = true)",
]


def positional(parameters: list[str], types: list[str | None], kind: str) -> list[str | None]:
    """The types of a function's positional parameters (a macro's are all positional and untyped)."""
    if kind.endswith("macro"):
        return [None] * len(parameters)
    return [t for p, t in zip(parameters, types) if re.fullmatch(r"col\d+", p)]


def argument_lists(types: list[str | None], targets: list[str] = TARGETS) -> list[str]:
    """Argument lists for one overload: its first text parameter aimed at each target, the others plain values."""
    first_text = next((i for i, t in enumerate(types) if t in ("VARCHAR", "VARCHAR[]")), None)
    plain = [ARGUMENTS.get(t, "'x'") for t in types]
    if first_text is None:
        return [", ".join(plain)]
    if types[first_text] == "VARCHAR[]":  # one call reads them all
        aimed = "[" + ", ".join(f"'{t}'" for t in targets) + "]"
        return [", ".join(plain[:first_text] + [aimed] + plain[first_text + 1:])]
    return [", ".join(plain[:first_text] + [f"'{t}'"] + plain[first_text + 1:]) for t in targets]


def table_function_calls() -> list[str]:
    """`select * from f(...)` for every table function and table macro DuckDB has, once per argument list."""
    overloads = CATALOG.execute("""
        select function_name, function_type, parameters, parameter_types from duckdb_functions()
        where function_type in ('table', 'table_macro') order by all""").fetchall()
    calls: dict[str, None] = {}
    for name, kind, parameters, types in overloads:
        for arguments in PLAUSIBLE.get(name) or argument_lists(positional(parameters, types, kind)):
            calls[f"select * from {name}({arguments})"] = None
        if not parameters:
            calls[f"select * from {name}()"] = None
    return list(calls) + NAMED_CALLS


def table_function_names() -> set[str]:
    """The names of every table function and table macro DuckDB has."""
    return {name for (name,) in CATALOG.execute(
        "select function_name from duckdb_functions() where function_type in ('table', 'table_macro')").fetchall()}


SCALAR_NAMES = re.compile(r"^read_|getenv|setting|file|path|secret|extension|env|dir|version|platform|user|database|"
                          r"schema|catalog|^current_|query|sql|glob|variable|^write_|_log|log_|profil|config|system|"
                          r"^pg_|^sqlite_|^duckdb_|^error$|^stem$|^typeof$|^stats$|^hash$")
# settings whose value may be a path of this machine, a secret or how the sandbox is locked
SETTING_NAMES = re.compile(r"path|dir|file|secret|extension|home|allowed|external|filesystem|lock|output|agent|"
                           r"log|storage|temp|api|config|access|memory|threads")
PLAUSIBLE_SCALARS = {"getvariable": ["'x'"], "error": ["'x'"], "stem": ["'walking', 'porter'"], "write_log": ["'x'"]}
# the DuckDB shell's getenv (not in the Python package's catalog): tried in case a build has it
GETENV_CALLS = [f"select getenv('{name}')" for name in ("HOME", SECRET_VARIABLE, "OPENAI_API_KEY", "PATH", "PWD")]


def scalar_function_calls() -> list[str]:
    """`select f(...)` for every scalar function or macro whose name says it may read a file or tell a path, a
    setting, the environment or the catalog; current_setting once per setting that may hold one."""
    overloads = CATALOG.execute("""
        select function_name, function_type, parameters, parameter_types from duckdb_functions()
        where function_type in ('scalar', 'macro') order by all""").fetchall()
    calls: dict[str, None] = {}
    for name, kind, parameters, types in overloads:
        if not SCALAR_NAMES.search(name) or name == "current_setting":
            continue
        types = positional(parameters, types, kind)
        for arguments in PLAUSIBLE_SCALARS.get(name) or argument_lists(types, ["{outside}"]):
            calls[f"select {name}({arguments})"] = None
    for (setting,) in CATALOG.execute("select name from duckdb_settings() order by 1").fetchall():
        if SETTING_NAMES.search(setting):
            calls[f"select current_setting('{setting}')"] = None
    return list(calls) + GETENV_CALLS


def pragma_calls() -> list[str]:
    """`pragma f(...)` for every pragma DuckDB has (their pragma_* table functions are among the table functions)."""
    overloads = CATALOG.execute("""
        select function_name, parameters, parameter_types from duckdb_functions()
        where function_type = 'pragma' order by all""").fetchall()
    calls: dict[str, None] = {}
    for name, parameters, types in overloads:
        arguments = ", ".join(ARGUMENTS.get(t, "'x'") if t != "VARCHAR" else "'memory'"
                              for t in positional(parameters, types, "pragma"))
        calls[f"pragma {name}({arguments})" if parameters else f"pragma {name}"] = None
    return list(calls)


ALLOWED_CATALOG_VIEWS = {"information_schema.tables", "information_schema.columns"}  # names and types only


def catalog_view_reads() -> list[str]:
    """`select * from` every internal view (information_schema, pg_catalog, duckdb_*), qualified and not."""
    views = CATALOG.execute("select schema_name, view_name from duckdb_views() where internal order by all").fetchall()
    reads = [f"select * from {schema}.{view}" for schema, view in views]
    reads += [f"select * from system.{schema}.{view}" for schema, view in views]
    reads += [f"select * from {view}" for schema, view in views]
    return [r for r in reads if r.split("from ")[1] not in ALLOWED_CATALOG_VIEWS]


def new(attempts: list[str]) -> list[str]:
    """The attempts tests/test_sandbox.py does not already make, once each."""
    return [a for a in dict.fromkeys(attempts) if a not in ESCAPES]


TABLE_FUNCTION_CALLS = new(table_function_calls())
PURE_CALLS = [c for c in TABLE_FUNCTION_CALLS if c.split("from ")[1].split("(")[0] in PURE_TABLE_FUNCTIONS]
SCALAR_CALLS = new(scalar_function_calls())

DEEP = 2000  # levels of nesting; sqlglot's parser runs out of Python's stack at about 40
# statements of every other shape; each must be refused by the statement check
STATEMENTS = [
    # files in and out, other databases, extensions
    "copy memory to '{dir}/stolen.csv'",
    "copy (select * from memory) to 'stolen.json'",
    "copy memory from '/etc/passwd'",
    "copy orders from '{outside}'",
    "attach ':memory:' as scratch",
    "attach '{dir}/evil.duckdb' as evil",
    "attach '{outside}' as evil",
    "attach '{dir}/evil.sqlite' as evil (type sqlite)",
    "attach 'ducklake:{dir}/lake.ducklake' as lake",
    "attach if not exists '{warehouse}' as again (read_only)",
    "detach warehouse",
    "use system.main",
    "install httpfs",
    "install '{outside}'",
    "force install httpfs",
    "load httpfs",
    "load '{outside}'",
    "update extensions",
    "export database '{dir}/exported'",
    "import database '{dir}'",
    # settings and secrets
    "pragma database_list",
    "pragma show_tables",
    "pragma enable_profiling",
    "pragma profiling_output = '{dir}/profile.txt'",
    "pragma memory_limit = '64GB'",
    "set enable_external_access = true",
    "set disabled_filesystems = ''",
    "set lock_configuration = false",
    "set global enable_external_access = true",
    "set session threads = 64",
    "set variable leak = getenv('HOME')",
    "reset lock_configuration",
    "reset all",
    "call pragma_version()",
    "call enable_logging(storage = 'file', storage_path = '{dir}/logs')",
    "call duckdb_settings()",
    "create secret (type s3, key_id 'k', secret 's')",
    "create persistent secret s (type http, bearer_token 't')",
    "drop secret s",
    # writes and new objects
    "create macro leak() as getenv('HOME')",
    "create temp macro current_setting(a) as 'hidden'",
    "create view v as select * from memory",
    "create temp table t as select * from memory",
    "create or replace table memory as select 1 as id",
    "create schema s",
    "create sequence s",
    "create type mood as enum ('a')",
    "create index i on memory (id)",
    "alter table memory rename to gone",
    "comment on table memory is 'x'",
    "truncate memory",
    "delete from memory",
    "update memory set title = 'changed'",
    "insert into memory (id) values ('x')",
    "insert into memory by name select 'x' as id",
    "merge into memory using orders on false when not matched then insert (id) values ('x')",
    "drop table memory",
    "drop view if exists v",
    "vacuum memory",
    "analyze",
    "checkpoint",
    "force checkpoint",
    "begin transaction",
    "prepare p as select * from read_text('/etc/passwd')",
    "execute p",
    "explain analyze select * from read_text('/etc/passwd')",
    "explain select * from read_text('/etc/passwd')",
    "summarize select * from read_text('/etc/passwd')",
    "describe select * from read_text('/etc/passwd')",
    "show databases",
    "show all tables",
    "from duckdb_settings()",
    "from read_text('/etc/passwd')",
    "pivot memory on title using count(*)",
    # several statements in one string
    "select 1; select 2",
    "select 1;drop table memory",
    "select 1 ; ; delete from memory",
    "select ';' as x; delete from memory",
    "select 1 -- ; \n; delete from memory",
    "select 1 /* ; */; delete from memory",
    "select 'a;b' as x; attach '{dir}/evil.duckdb'",
    "select $$;$$ as x; copy memory to '{dir}/stolen.csv'",
    "select 1; copy memory to '{dir}/stolen.csv' --",
    # comments hiding what follows
    "select * from orders -- \n union all select content, 1 from read_text('/etc/passwd')",
    "select * from orders /* */ union all select content, 1 from read_text('/etc/passwd')",
    "/* select 1 */ copy memory to '{dir}/stolen.csv'",
    "select/**/content/**/from/**/read_text('/etc/passwd')",
    "select * from read_text/**/('/etc/passwd')",
    # CTEs
    "with read_text as (select 1 as content) select * from read_text('/etc/passwd')",
    "with t as (select * from read_text('/etc/passwd')) select * from t",
    "with recursive t(n) as (select 1 union all select n + 1 from t where n < 3) "
    "select * from t, read_text('/etc/passwd')",
    "with recursive t as (select content from read_text('/etc/passwd') union all select content from t) "
    "select * from t",
    "with memory as (select * from read_text('/etc/passwd')) select * from memory",
    "with a as (select * from pragma_database_list), pragma_database_list as (select 1 as x) select * from a",
    "select * from (with pragma_database_list as (select 1 as x) select * from pragma_database_list) t, "
    "pragma_database_list",
    "select * from (with duckdb_databases as (select 1 as x) select 1 as y) t, duckdb_databases",
    "with a as (select * from sqlite_master), sqlite_master as (select 1 as x) select * from a",
    "with a as (select * from duckdb_columns), duckdb_columns as (select 1 as x) select * from a",
    "select * from (with duckdb_settings as (select 1 as x) select 1 as y) t, duckdb_settings",
    "select * from memory where id in (with pg_settings as (select 'x' as id) select id from pg_settings) "
    "union all select * from memory, pg_settings",
    "with t as materialized (select * from glob('/etc/*')) select * from t",
    "with t as (select 1) copy memory to '{dir}/stolen.csv'",
    "with t as (select 1) delete from memory",
    "with t as (select 1) insert into memory (id) values ('x')",
    # quoting and case
    "select * from \"read_csv\"('/etc/passwd')",
    "select * from \"read_text\"('/etc/passwd')",
    "select * from ReAd_CsV('/etc/passwd')",
    "select * from READ_TEXT('/etc/passwd')",
    "select GeTeNv('HOME')",
    "select \"getenv\"('HOME')",
    "select \"current_setting\"('temp_directory')",
    "select * from \"duckdb_databases\"()",
    "select * from \"pragma_database_list\"",
    "select * from \"PRAGMA_DATABASE_LIST\"",
    "select * from \"system\".\"main\".\"duckdb_databases\"()",
    "select * from \"/etc/passwd\"",
    "select * from '/etc/passwd'",
    "select * from \"{warehouse}\"",
    "select * from `read_text`('/etc/passwd')",
    # schema-qualified system functions
    "select * from system.main.read_text('/etc/passwd')",
    "select * from main.read_text('/etc/passwd')",
    "select * from \"system\".\"main\".glob('/etc/*')",
    "select * from system.main.glob('/etc/*')",
    "select system.main.getenv('HOME')",
    "select main.getenv('HOME')",
    "select system.main.current_setting('temp_directory')",
    "select system.pg_catalog.current_setting('temp_directory')",
    "select pg_catalog.current_setting('temp_directory')",
    "select * from temp.main.duckdb_databases()",
    "select * from warehouse.main.memory, system.main.duckdb_databases()",
    "select * from warehouse.memory",
    # replacement scans and table syntax
    "select * from '/etc/passwd'",
    "select * from 'x.csv'",
    "select * from '{dir}/x.parquet'",
    "select * from '{warehouse}'",
    "select * from '/etc/*'",
    "select * from '{outside}'",
    "from '/etc/passwd'",
    "select * from 's3://bucket/x.parquet'",
    f"select * from '{URL}.csv'",
    "table duckdb_settings",
    "table pragma_database_list",
    "select * from (table pg_settings)",
    # reads hidden in expressions
    "select (select content from read_text('/etc/passwd')) as x",
    "select (select count(*) from glob('/etc/*')) as n",
    "select exists (select 1 from read_text('/etc/passwd')) as x",
    "select * from orders where id in (select size from read_text('/etc/passwd'))",
    "select * from orders, lateral (select * from read_text('/etc/passwd'))",
    "select * from orders cross join lateral read_text('/etc/passwd')",
    "select * from orders join read_text('/etc/passwd') on true",
    "select * from orders positional join read_text('/etc/passwd')",
    "select * from orders asof join read_text('/etc/passwd') t on orders.id >= t.size",
    "select * from (values ((select content from read_text('/etc/passwd')))) t(x)",
    "values ((select content from read_text('/etc/passwd')))",
    "select * from (values (1)) t(x), read_text('/etc/passwd')",
    "select list(x) from unnest((select list(content) from read_text('/etc/passwd'))) t(x)",
    "select * from unnest([1]), read_text('/etc/passwd')",
    "select * from range(1) r, read_text('/etc/passwd')",
    "select * from generate_series(1, 1), (select * from read_text('/etc/passwd'))",
    "select '/etc/passwd'::table",
    "select * from ('/etc/passwd'::varchar)",
    "select * from read_text(['/etc/passwd'])",
    "select * from read_text(list_value('/etc/passwd'))",
    "select * from read_text(concat('/etc/', 'passwd'))",
    "select * from read_text((select '/etc/passwd'))",
    "select * from query('select 1')",
    "select * from query_table('memory')",
    "select * from query_table(getvariable('t'))",
    "select json_execute_serialized_sql('{{}}')",
    "select * from json_execute_serialized_sql('{{}}')",
    "select * from parquet_metadata('{warehouse}')",
    "select * from parquet_kv_metadata('/etc/passwd')",
    "select json_extract(content, '$') from read_json_objects('/etc/passwd')",
    "select * from read_json('/etc/passwd')",
    "select * from pg_timezone_names()",
    "select * from pg_catalog.pg_settings",
    "select * from pg_settings",
    "select pg_catalog.pg_get_viewdef(1)",
    "select * from sqlite_master",
    "select sql from sqlite_schema",
    "select * from sqlite_scan('{dir}/x.sqlite', 't')",
    "select * from postgres_scan('host=127.0.0.1', 'public', 't')",
    "select * from iceberg_scan('{dir}/lake')",
    "select * from delta_scan('{dir}/lake')",
    # catalog functions and views that tell paths, settings or definitions
    "select * from duckdb_databases()",
    "select path from duckdb_databases()",
    "select * from duckdb_databases",
    "select * from duckdb_settings()",
    "select * from pragma_database_list",
    "select * from information_schema.schemata",
    "select * from information_schema.views",
    "select view_definition from information_schema.views",
    "select * from information_schema.character_sets",
    "select * from information_schema.table_constraints",
    "select * from information_schema.key_column_usage",
    "select * from information_schema.referential_constraints",
    "select * from information_schema.check_constraints",
    "select * from system.information_schema.tables",
    "select * from duckdb_columns()",
    "select * from duckdb_columns",
    "select sql from duckdb_tables()",
    "select sql from duckdb_views()",
    "select * from duckdb_tables",
    "select * from duckdb_views",
    "select * from duckdb_functions()",
    "select macro_definition from duckdb_functions() where function_type = 'macro'",
    "select * from duckdb_extensions()",
    "select * from duckdb_secrets()",
    "select * from duckdb_secret_types()",
    "select * from duckdb_memory()",
    "select * from duckdb_temporary_files()",
    "select * from duckdb_external_file_cache()",
    "select * from duckdb_logs()",
    "select * from duckdb_variables()",
    "select * from duckdb_schemas()",
    "select * from duckdb_dependencies()",
    "select * from duckdb_log_contexts()",
    "select * from duckdb_prepared_statements()",
    "select * from pragma_user_agent()",
    "select * from pragma_platform()",
    "select * from pragma_database_size()",
    "select * from pragma_metadata_info()",
    "select current_setting('temp_directory')",
]
# tricks that are harmless as DuckDB reads them, or that name a function DuckDB does not have: refused or run, they
# must show nothing private and change nothing
TRICKS = [
    "select * from orders /* /* nested */ union all select content, 1 from read_text('/etc/passwd') */",
    "select * from orders /* */ union all select * from orders",
    "table memory",
    "with memory as (select 'x' as id) select * from memory",
    "with duckdb_settings as (select 1 as x) select * from duckdb_settings",
    "with pragma_database_list as (select 1 as x) select * from pragma_database_list",
    "with read_text as (select 1 as content) select * from read_text",
    "with recursive t(n) as (select 1 union all select n + 1 from t where n < 3) select * from t",
    "with a as (select 1 as x), b as (select * from a) select * from b",
    "select (select count(*) from memory) as n",
    "select * from orders, lateral (select id as same) limit 1",
    "select * from (values (1), (2)) t(x)",
    "select * from unnest(['/etc/passwd'])",
    "select * from range(3)",
    "select * from generate_series(1, 3)",
    "select '/etc/passwd' as path",
    "select '{warehouse}' as path",
    # look-alike names: homoglyphs and invisible characters
    "select * from rеad_text('/etc/passwd')",  # Cyrillic е
    "select * from read\u200b_text('/etc/passwd')",  # zero-width space
    "select * from read_text\u200d('/etc/passwd')",  # zero-width joiner
    "select * from \"read\u200b_text\"('/etc/passwd')",
    "select getеnv('HOME')",  # Cyrillic е
    "select * from ｒｅａｄ_ｔｅｘｔ('/etc/passwd')",  # full-width letters
    "select * from memory\u200b",
    "select * from \"memory\u200b\"",
    "select\u00a0*\u00a0from\u00a0read_text('/etc/passwd')",  # no-break spaces
    "select * from read_text('/etc/passwd')\u2028",
]
# too big or too deep for the checker to take its time over: it refuses them or passes them within CHECK_SECONDS
BIG_STATEMENTS = [
    "select count(*) from orders where " + " or ".join(f"id = {i}" for i in range(90_000)),
    "select count(*) from orders where id in (" + ",".join(str(i) for i in range(170_000)) + ")",
    "select '" + "x" * 1_000_000 + "' as x from orders",
    "select 1 as x from orders /*" + "x" * 1_000_000 + "*/",
    "select " + "(" * DEEP + "1" + ")" * DEEP + " as x from orders",
    "select " + "(" * 60 + "1" + ")" * 60 + " as x from orders",
    "select * from " + "(select * from " * DEEP + "orders" + ")" * DEEP,
    "select * from " + "(select * from " * DEEP + "read_text('/etc/passwd')" + ")" * DEEP,
    "select " + "not " * 50_000 + "true as x from orders",
    "select " + "-" * 100_000 + "1 as x from orders",
    "select " + "+".join(["id"] * 150_000) + " as x from orders",
    "select " + "[" * DEEP + "1" + "]" * DEEP + " as x from orders",
    "select " + "coalesce(" * DEEP + "1" + ")" * DEEP + " as x from orders",
    "select * from orders " + "union all select * from orders " * 20_000,
    "with " + ", ".join(f"t{i} as (select * from t{i - 1})" if i else "t0 as (select * from orders)"
                        for i in range(DEEP)) + f" select * from t{DEEP - 1}",
]
CHECK_SECONDS = 2.0  # of the checking thread's own CPU time: other processes on a busy machine do not count


def case_id(template: str) -> str:
    """A short test id for a statement (the huge ones are a megabyte long)."""
    return template if len(template) <= 120 else f"{template[:60]}...({len(template):,} chars)"


def digest(path: Path) -> str:
    """A file's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lost_rows(before: Path, after: Path) -> int:
    """How many rows of memory and orders in the warehouse file `before` are gone from `after` (read without the
    sandbox)."""
    def rows(warehouse: Path) -> set:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return {(t, *row) for t in ("memory", "orders") for row in con.execute(f"select * from {t}").fetchall()}
    return len(rows(before) - rows(after))


@dataclass
class Scene:
    """A fresh copy of the warehouse, a planted file outside it, an empty working folder, a secret variable."""
    folders: dict[str, Path]
    template: Path

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.folders["data"] / "warehouse.duckdb")

    def filled(self, template: str) -> str:
        """An attempt with this scene's places in it."""
        return (template.replace("{dir}", str(self.folders["data"])).replace("{warehouse}", str(self.warehouse))
                .replace("{outside}", str(self.folders["outside"] / "secret.csv")).replace("{{}}", "{}"))

    def private(self) -> list[str]:
        """What no result may show."""
        return [str(self.folders["data"]), str(self.folders["cwd"]), os.path.expanduser("~"), "root:x:0",
                "/sbin/nologin", OUTSIDE_CONTENT, SECRET_VALUE]

    def files(self) -> dict[str, list[str]]:
        """What each folder of the scene holds."""
        return {name: sorted(os.listdir(folder)) for name, folder in self.folders.items()}

    def assert_unharmed(self, result, rows_lost) -> None:
        """The attempt showed nothing private; the warehouse is byte for byte as it was and no file appeared."""
        same = digest(self.warehouse.path) == digest(self.template)
        rows_lost(0 if same else lost_rows(self.template, self.warehouse.path))
        if result is not None:
            shown = repr(result.rows)
            assert not [p for p in self.private() if p in shown], shown[:500]
        assert same, "the warehouse file changed"
        assert self.files() == {"data": ["warehouse.duckdb"], "outside": ["secret.csv"], "cwd": []}


@pytest.fixture(scope="module")
def template_warehouse(tmp_path_factory) -> Path:
    """The warehouse every case starts from (tests/helpers/sandbox.py's: reverie's schema, a memory row, orders)."""
    return new_warehouse(tmp_path_factory.mktemp("sandbox-template")).path


@pytest.fixture
def scene(tmp_path, template_warehouse, monkeypatch) -> Scene:
    """A fresh scene for one attempt."""
    folders = {name: tmp_path / name for name in ("data", "outside", "cwd")}
    for folder in folders.values():
        folder.mkdir()
    shutil.copy(template_warehouse, folders["data"] / "warehouse.duckdb")
    (folders["outside"] / "secret.csv").write_text(f"name,value\n{OUTSIDE_CONTENT},1\n")
    monkeypatch.chdir(folders["cwd"])
    monkeypatch.setenv(SECRET_VARIABLE, SECRET_VALUE)
    return Scene(folders, template_warehouse)


def somewhere(template: str) -> str:
    """An attempt aimed at a project's places, for the statement check alone (a string check needs no scene)."""
    folder = "/srv/shop/.reverie"
    return (template.replace("{dir}", folder).replace("{warehouse}", f"{folder}/warehouse.duckdb")
            .replace("{outside}", "/srv/outside/secret.csv").replace("{{}}", "{}"))


def attempt(run, sql: str):
    """The result of running `sql`, or None if the sandbox refused it."""
    try:
        return run(sql)
    except SandboxError:
        return None


def through_both_locks(warehouse: Warehouse):
    """run_query: the statement check, then the sandbox connection."""
    return lambda sql: run_query(warehouse, sql)


def through_the_connection_alone(warehouse: Warehouse):
    """fetch on a sandbox connection, the statement check skipped."""
    def run(sql: str):
        with sandbox_connection(warehouse) as con:
            return fetch(con, sql, warehouse)
    return run


def test_the_enumeration_found_duckdbs_functions_and_the_offline_extensions():
    assert {"core_functions", "json", "parquet", "icu", "fts"} <= set(LOADED_EXTENSIONS)
    names = table_function_names()
    assert {"read_csv", "read_text", "glob", "query_table", "duckdb_settings"} <= names and len(names) > 80
    assert len(TABLE_FUNCTION_CALLS) > 120 and len(PURE_CALLS) >= 3
    assert {f"select getenv('{SECRET_VARIABLE}')", "select current_setting('secret_directory')"} <= set(SCALAR_CALLS)


@pytest.mark.reliability("escape", lock="both")
@pytest.mark.parametrize("template", TABLE_FUNCTION_CALLS)
def test_every_table_function_is_refused_by_the_sandbox_but_those_that_read_nothing(scene, template, rows_lost):
    if template in PURE_CALLS:
        result = run_query(scene.warehouse, scene.filled(template))
        assert result.rows
    else:
        with pytest.raises(SandboxError) as refused:
            run_query(scene.warehouse, scene.filled(template))
        assert str(refused.value)
        result = None
    scene.assert_unharmed(result, rows_lost)


@pytest.mark.reliability("escape", lock="connection")
@pytest.mark.parametrize("template", TABLE_FUNCTION_CALLS)
def test_every_table_function_through_the_connection_alone_fails_or_shows_and_changes_nothing(scene, template,
                                                                                               rows_lost):
    scene.assert_unharmed(attempt(through_the_connection_alone(scene.warehouse), scene.filled(template)), rows_lost)


@pytest.mark.reliability("escape", lock="both")
@pytest.mark.parametrize("template", SCALAR_CALLS)
def test_every_scalar_function_that_could_tell_a_path_or_a_setting_shows_and_changes_nothing(scene, template,
                                                                                              rows_lost):
    scene.assert_unharmed(attempt(through_both_locks(scene.warehouse), scene.filled(template)), rows_lost)


@pytest.mark.reliability("escape", lock="connection")
@pytest.mark.parametrize("template", SCALAR_CALLS)
def test_every_such_scalar_function_through_the_connection_alone_shows_and_changes_nothing(scene, template, rows_lost):
    scene.assert_unharmed(attempt(through_the_connection_alone(scene.warehouse), scene.filled(template)), rows_lost)


ALL_STATEMENTS = new(STATEMENTS + pragma_calls() + catalog_view_reads())


@pytest.mark.reliability("escape", lock="statement check")
@pytest.mark.parametrize("template", ALL_STATEMENTS, ids=case_id)
def test_the_statement_check_alone_refuses_every_other_shape_quickly(template):
    started = time.thread_time()
    with pytest.raises(SandboxError) as refused:
        check_statement(somewhere(template), TABLES)
    assert str(refused.value) and time.thread_time() - started < CHECK_SECONDS


@pytest.mark.reliability("escape", lock="connection")
@pytest.mark.parametrize("template", ALL_STATEMENTS, ids=case_id)
def test_every_other_shape_through_the_connection_alone_fails_or_shows_and_changes_nothing(scene, template,
                                                                                            rows_lost):
    scene.assert_unharmed(attempt(through_the_connection_alone(scene.warehouse), scene.filled(template)), rows_lost)


@pytest.mark.reliability("escape", lock="both")
@pytest.mark.parametrize("template", TRICKS)
def test_a_harmless_looking_trick_through_both_locks_shows_and_changes_nothing(scene, template, rows_lost):
    scene.assert_unharmed(attempt(through_both_locks(scene.warehouse), scene.filled(template)), rows_lost)


@pytest.mark.reliability("escape", lock="connection")
@pytest.mark.parametrize("template", TRICKS)
def test_a_harmless_looking_trick_through_the_connection_alone_shows_and_changes_nothing(scene, template, rows_lost):
    scene.assert_unharmed(attempt(through_the_connection_alone(scene.warehouse), scene.filled(template)), rows_lost)


@pytest.mark.reliability("escape", lock="statement check")
@pytest.mark.parametrize("template", BIG_STATEMENTS, ids=case_id)
def test_a_huge_or_deeply_nested_statement_is_refused_or_passed_quickly_and_never_crashes_the_check(template):
    started = time.thread_time()
    try:
        check_statement(somewhere(template), TABLES)
    except SandboxError as refused:
        assert str(refused)
    assert time.thread_time() - started < CHECK_SECONDS


@pytest.mark.reliability("escape", lock="both")
@pytest.mark.parametrize("template", BIG_STATEMENTS, ids=case_id)
def test_a_huge_or_deeply_nested_statement_through_both_locks_shows_and_changes_nothing(scene, template, rows_lost):
    scene.assert_unharmed(attempt(through_both_locks(scene.warehouse), scene.filled(template)), rows_lost)
