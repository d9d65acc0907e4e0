"""The analyst layer: views over the warehouse with pseudonymous keys and no personal data.

Analysts query ``analyst.*``; the identifiable schemas (staging, linkage,
claims, ...) need ``famlink query --identifiable``. Keys are a keyed hash,
``sha256(secret || id)`` cut to 16 hex digits, with a random secret made once
per warehouse (``meta.warehouse_secret``): the same person has the same key in
every run of one warehouse, and keys from two warehouses cannot be joined.
"""

from __future__ import annotations

import logging
import secrets

import duckdb
import sqlglot
from sqlglot import exp

from famlink.models import layer_order

SCHEMA = "analyst"
KEY_HEX_DIGITS = 16

# The statements an analyst may run: queries and their read-only shorthands.
QUERY_STATEMENTS = (exp.Query, exp.Describe, exp.Summarize)


class QueryRefused(ValueError):
    """A statement reaches outside the analyst layer; the message says what and why."""


def ensure_secret(con: duckdb.DuckDBPyConnection) -> None:
    """Create this warehouse's pseudonym secret once; later runs keep it."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute("CREATE TABLE IF NOT EXISTS meta.warehouse_secret (secret VARCHAR NOT NULL, "
                "created_at TIMESTAMP DEFAULT current_timestamp)")
    if con.execute("SELECT count(*) FROM meta.warehouse_secret").fetchone() == (0,):
        con.execute("INSERT INTO meta.warehouse_secret (secret) VALUES (?)",
                    [secrets.token_hex(32)])
    con.execute(
        "CREATE OR REPLACE MACRO meta.pseudonym(id) AS "
        f"left(sha256((SELECT min(secret) FROM meta.warehouse_secret) || id), {KEY_HEX_DIGITS})")


def create_analyst_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """(Re)create every ``transforms/analyst/*.sql`` model as a view ``analyst.<name>``."""
    ensure_secret(con)
    con.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    con.execute(f"CREATE SCHEMA {SCHEMA}")
    names = []
    for model in layer_order(SCHEMA):  # the model graph's order (a view may read another)
        name = model.name.partition(".")[2]
        con.execute(f"CREATE VIEW {SCHEMA}.{name} AS {model.sql}")
        names.append(name)
    return names


def analyst_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The analyst layer's views in this warehouse (empty: it was built before the layer)."""
    rows = con.execute("SELECT table_name FROM information_schema.tables "
                       "WHERE table_schema = ?", [SCHEMA]).fetchall()
    return {str(name).lower() for (name,) in rows}


def refuse_outside_analyst(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse (``QueryRefused``) SQL that is not a query reading only the analyst layer.

    DuckDB's parser reads it first (a syntax error raises its ``ParserException``),
    then every statement must be a SELECT whose tables all resolve to ``analyst.*``.
    """
    statements = con.extract_statements(sql)
    for statement in statements:
        if statement.type != duckdb.StatementType.SELECT:
            raise QueryRefused(f"only queries on the {SCHEMA} layer can run here, not "
                               f"{statement.type.name}")
    tables = analyst_tables(con)
    if not tables:
        raise QueryRefused(f"this warehouse has no {SCHEMA} layer yet (built by an older "
                           "famlink): run famlink run again, or add --identifiable")
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    try:
        check_analyst_only(sql, tables)
    except sqlglot.errors.SqlglotError as exc:
        raise QueryRefused(f"cannot check the statement reads only the {SCHEMA} layer "
                           f"({type(exc).__name__}): rewrite it or add --identifiable") from None


def check_analyst_only(sql: str, tables: set[str]) -> None:
    """Refuse (``QueryRefused``) a statement that reads anything but ``analyst.*``.

    Unqualified names must be a CTE of the statement or an analyst view (the
    search path would otherwise fall back to other schemas); table functions
    (``read_csv``, ``query``, ...) and schema-qualified functions are refused.
    Raises ``sqlglot.errors.ParseError`` when the statement cannot be read.
    """
    statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    if not statements:
        raise QueryRefused("no statement given")
    for statement in statements:
        if not isinstance(statement, QUERY_STATEMENTS):
            raise QueryRefused(f"only queries on the {SCHEMA} layer can run here, not "
                               f"{statement.key.upper()}")
        ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
        for table in statement.find_all(exp.Table):
            _check_table(table, ctes, tables)
        for dot in statement.find_all(exp.Dot):
            if isinstance(dot.expression, exp.Func):
                raise QueryRefused(f"function {dot.sql(dialect='duckdb')[:60]} is outside "
                                   f"the {SCHEMA} layer")


def _check_table(table: exp.Table, ctes: set[str], tables: set[str]) -> None:
    if not isinstance(table.this, exp.Identifier):
        raise QueryRefused(f"table functions such as {table.this.sql(dialect='duckdb')[:40]} "
                           f"cannot run on the {SCHEMA} layer")
    name = table.name.lower()
    schema = table.db.lower()
    if table.catalog or (schema and schema != SCHEMA):
        qualified = ".".join(p for p in (table.catalog, table.db, table.name) if p)
        raise QueryRefused(f"{qualified} is outside the {SCHEMA} layer: add --identifiable "
                           "if you are allowed to see personal data")
    if not schema and name in ctes:
        return
    if name not in tables:
        raise QueryRefused(f"{SCHEMA}.{table.name} does not exist: famlink describe lists "
                           f"the {SCHEMA} views")


def connect_analyst(path: str) -> duckdb.DuckDBPyConnection:
    """A sealed read-only session whose unqualified names resolve to the analyst layer."""
    from famlink.warehouse import READ_ONLY_CONFIG

    config = {k: v for k, v in READ_ONLY_CONFIG.items() if k != "lock_configuration"}
    con = duckdb.connect(str(path), read_only=True, config=config)
    try:
        if analyst_tables(con):
            con.execute(f"SET search_path = '{SCHEMA}'")
        if READ_ONLY_CONFIG.get("lock_configuration"):
            con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con
