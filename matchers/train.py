"""``famlink train-linkage``: estimate the person model's parameters.

u (chance agreement) by random sampling, m (how one person's records differ)
by expectation maximisation over blocks that leave each comparison free to be
learnt at least once, the prior from near-certain rules. The result is a JSON
file committed to the repo; the monthly run only loads it, so claims are
repeatable and a parameter change is a reviewed commit.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from matchers.comparisons import person_settings
from matchers.linkage import _profiles
from matchers.probabilistic import SPLINK_COLUMNS, make_linker
from matchers.records import build_person_records

EM_BLOCKS = [
    "l.dob = r.dob",
    "l.first_name = r.first_name AND l.last_name = r.last_name",
    "l.postcode = r.postcode AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
]
PRIOR_RULES = [
    "l.first_name = r.first_name AND l.last_name = r.last_name AND l.dob = r.dob",
    "l.upn = r.upn",
    "l.nhs_number = r.nhs_number",
]


def train_on_table(
    con: duckdb.DuckDBPyConnection, table: str, out_json: Path, seed: int = 1
) -> Path:
    """Train on a table with the Splink person columns; write the model JSON."""
    settings = person_settings("dedupe_only")
    linker = make_linker(con, table, settings)
    linker.training.estimate_probability_two_random_records_match(PRIOR_RULES, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=seed)
    for rule in EM_BLOCKS:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True
        )
    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    linker.misc.save_model_to_json(str(out_json), overwrite=True)
    return out_json


def train_person_model(
    con_or_warehouse_path: duckdb.DuckDBPyConnection | str | Path, out_json: Path, seed: int = 1
) -> Path:
    """Train from a warehouse's ``staging.*`` views (connection or DuckDB file)."""
    own = not isinstance(con_or_warehouse_path, duckdb.DuckDBPyConnection)
    con = duckdb.connect(str(con_or_warehouse_path)) if own else con_or_warehouse_path
    try:
        build_person_records(con)
        _profiles(con)
        cols = ", ".join(c for c in SPLINK_COLUMNS if c != "unique_id")
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _fl_train AS
            SELECT CAST(profile_id AS VARCHAR) AS unique_id, {cols} FROM _fl_profiles
            WHERE last_name IS NOT NULL OR (first_name IS NOT NULL AND dob IS NOT NULL)"""
        )
        return train_on_table(con, "_fl_train", out_json, seed)
    finally:
        if own:
            con.close()
