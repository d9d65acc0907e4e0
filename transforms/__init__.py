"""SQL models, dbt-style: staging -> intermediate -> marts, one model per file.

A file ``<layer>/<prefix>_<name>.sql`` holds one SELECT; it becomes the view or
table ``<layer>.<name>`` (``stg_yot_offences.sql`` -> ``staging.yot_offences``).
"""

from __future__ import annotations

from importlib import resources

import duckdb

LAYER_PREFIXES = {"staging": "stg_", "intermediate": "int_", "marts": "", "analyst": ""}


def model_sql(layer: str, file_name: str) -> str:
    return resources.files(__package__).joinpath(layer, file_name).read_text(encoding="utf-8")


def model_files(layer: str) -> list[str]:
    folder = resources.files(__package__).joinpath(layer)
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))


def model_name(layer: str, file_name: str) -> str:
    stem = file_name.removesuffix(".sql")
    prefix = LAYER_PREFIXES.get(layer, "")
    return stem.removeprefix(prefix) if prefix else stem


def create_staging_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """(Re)create every staging view; they read raw.* through getvariable('as_of_month')."""
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    names = []
    for file_name in model_files("staging"):
        name = model_name("staging", file_name)
        con.execute(f"CREATE OR REPLACE VIEW staging.{name} AS {model_sql('staging', file_name)}")
        names.append(name)
    return names
