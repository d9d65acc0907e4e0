"""SQL models, dbt-style: staging -> intermediate -> marts, one model per file.

A file ``<layer>/<prefix>_<name>.sql`` holds one SELECT; it becomes the view or
table ``<layer>.<name>`` (``stg_yot_offences.sql`` -> ``staging.yot_offences``).
Models name the models they read as ``schema.model``; famlink.models orders the
build from those references (``famlink models`` lists it). The staging files are
rendered from the contract (templates/staging_<delivery>.sql; regenerate with
``python -m famlink.models --write-staging``).
"""

from __future__ import annotations

from importlib import resources

import duckdb


def model_sql(layer: str, file_name: str) -> str:
    return resources.files(__package__).joinpath(layer, file_name).read_text(encoding="utf-8")


def model_files(layer: str) -> list[str]:
    folder = resources.files(__package__).joinpath(layer)
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))


def model_name(layer: str, file_name: str) -> str:
    """The model's table name within its layer's schema (famlink.models names it)."""
    from famlink.models import model_name as qualified

    return qualified(layer, file_name).partition(".")[2]


def create_staging_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """(Re)create every staging view, in the model graph's order; they read raw.*
    as at the as-of month in meta.run_parameters (the run's, written before them),
    so the published warehouse shows every later reader what the run saw."""
    from famlink.models import ModelFileFault, ModelGraphError, ensure_run_parameters, layer_order

    ensure_run_parameters(con)
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    names = []
    # staging reads only sources (raw.*, meta.*), so its part of the graph stands alone
    try:
        ordered = layer_order("staging")
    except ModelGraphError as exc:
        raise ModelFileFault.of(exc) from None
    for model in ordered:
        name = model.name.removeprefix("staging.")
        con.execute(f"CREATE OR REPLACE VIEW staging.{name} AS {model.sql}")
        names.append(name)
    return names
