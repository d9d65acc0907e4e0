"""Splink 5 (DuckDB) scoring of candidate person pairs with the trained model.

The monthly run loads the committed model and never retrains; the standalone
link command may re-estimate u (how often values agree by chance) on its own
inputs, because chance agreement depends on the population, while m (how
records of one person disagree) is a property of data entry and transfers.
"""

from __future__ import annotations

import json
import logging
from copy import deepcopy
from pathlib import Path
from typing import Any

import duckdb

from matchers.comparisons import BLOCKING_RULES, FIRST_NAME_COMPATIBLE_SQL, person_settings

DEFAULT_MODEL_PATH = Path(__file__).parent / "model" / "person_model.json"
SPLINK_COLUMNS = [
    "unique_id", "first_name", "first_name_groups", "other_names", "last_name",
    "last_name_tokens", "dob", "dob_str", "sex", "postcode", "postcodes", "postcode_sector",
    "postcode_district", "address", "upn", "nhs_number", "ni_number",
]

logging.getLogger("splink").setLevel(logging.WARNING)


def load_model_settings(model_path: Path | None = None, link_type: str = "dedupe_only") -> dict:
    """The trained model as a settings dict, or the untrained defaults if absent."""
    path = model_path or DEFAULT_MODEL_PATH
    if path.exists():
        settings = json.loads(path.read_text())
    else:
        settings = person_settings()
    settings = deepcopy(settings)
    settings["link_type"] = link_type
    settings.pop("linker_uid", None)
    settings["blocking_rules_to_generate_predictions"] = [
        {"blocking_rule": r, "sql_dialect": "duckdb"} for r in BLOCKING_RULES
    ]
    return settings


def make_linker(con: duckdb.DuckDBPyConnection, table: str, settings: dict[str, Any]):
    """Splink linker over one registered DuckDB table (dedupe of its rows)."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(table)
    return Linker(sdf, settings, log_level=None)


def twin_guard_sql(alias: str = "") -> str:
    """True when a pair must never link: same DOB, both forenames present and
    incompatible, and no strong identifier agreeing (the twin signature)."""
    a = alias
    cond = FIRST_NAME_COMPATIBLE_SQL
    for col in ("first_name_groups", "first_name", "other_names", "last_name"):
        for side in ("l", "r"):
            cond = cond.replace(f"{col}_{side}", f"{a}{col}_{side}")
    return f"""(
        {a}dob_l = {a}dob_r AND {a}first_name_l IS NOT NULL AND {a}first_name_r IS NOT NULL
        AND NOT {cond}
        AND NOT coalesce({a}upn_l = {a}upn_r OR {a}nhs_number_l = {a}nhs_number_r
                         OR {a}ni_number_l = {a}ni_number_r, false)
    )"""


def predict_pairs(
    con: duckdb.DuckDBPyConnection,
    table: str,
    settings: dict[str, Any],
    out_table: str,
    min_probability: float = 0.01,
    reestimate_u: bool = False,
    seed: int = 1,
) -> str:
    """Score blocked pairs of ``table`` into ``out_table`` (unique_id_l < unique_id_r)."""
    linker = make_linker(con, table, settings)
    if reestimate_u:
        linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=seed)
    df = linker.inference.predict(threshold_match_probability=min_probability)
    con.execute(
        f"CREATE OR REPLACE TABLE {out_table} AS SELECT *, {twin_guard_sql()} AS twin_guard "
        f"FROM {df.physical_name}"
    )
    return out_table
