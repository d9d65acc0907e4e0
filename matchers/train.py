"""``famlink train-linkage``: estimate the person model's parameters.

u (chance agreement) by random sampling, m (how one person's records differ)
by expectation maximisation over blocks that leave each comparison free to be
learnt at least once. The prior is not stored as a constant (it depends on
the county's size): training measures the recall of a near-certain rule
(forename, surname and DOB all equal) against the model's own expected number
of matches, and each run scales that rule's count by it (``estimate_prior``).
The result is a JSON file committed to the repo; the monthly run only loads
it, so claims are repeatable and a parameter change is a reviewed commit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from matchers.comparisons import person_settings
from matchers.linkage import _profiles
from matchers.probabilistic import (
    DEFAULT_PRIOR_RECALL,
    META_KEY,
    PRIOR_RULE,
    SPLINK_COLUMNS,
    add_blocking_columns,
    estimate_prior,
    make_linker,
    prior_rule_pairs,
    splink_session,
)
from matchers.records import build_person_records

EM_BLOCKS = [
    "l.dob = r.dob",
    "l.first_name = r.first_name AND l.last_name = r.last_name",
    "l.postcode = r.postcode AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
]
PRIOR_ITERATIONS = 4


def _expected_matches(con: duckdb.DuckDBPyConnection, linker, prior: float) -> float:
    """Sum of match probabilities over the blocked pairs at a given prior."""
    linker._settings_obj._probability_two_random_records_match = prior
    df = linker.inference.predict(threshold_match_probability=0.0001)
    try:
        return float(con.execute(
            f"SELECT coalesce(sum(match_probability), 0) FROM {df.physical_name}"
        ).fetchall()[0][0])
    finally:
        df.drop_table_from_database_and_remove_from_cache()


# No level is impossible for one person's records: EM on a small or clean county
# can drive an m towards zero (a weight of -80 bits); it is floored here.
M_FLOOR = 1e-4


def _floor_m(model: dict[str, Any]) -> None:
    """Floor every trained m; a level never observed keeps its starting value."""
    start = {(c["output_column_name"], lv["sql_condition"]): lv.get("m_probability")
             for c in person_settings()["comparisons"] for lv in c["comparison_levels"]}
    for c in model["comparisons"]:
        for lv in c["comparison_levels"]:
            if lv.get("is_null_level"):
                continue
            m = lv.get("m_probability")
            if not isinstance(m, (int, float)):
                m = start.get((c["output_column_name"], lv["sql_condition"])) or M_FLOOR
            lv["m_probability"] = max(float(m), M_FLOOR)


def train_on_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    out_json: Path,
    seed: int = 1,
    description: str = "",
) -> Path:
    """Train on a table with the Splink person columns; write the model JSON."""
    n = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    total = max(n * (n - 1) / 2, 1)
    sure = prior_rule_pairs(con, table)
    settings = person_settings("dedupe_only")
    settings["probability_two_random_records_match"] = estimate_prior(
        con, table, DEFAULT_PRIOR_RECALL)
    with splink_session(con, table) as scratch:
        linker = make_linker(scratch, table, settings)
        linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=seed)
        for rule in EM_BLOCKS:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True
            )
        # The prior as a fixed point: the model's expected number of matching pairs.
        prior = settings["probability_two_random_records_match"]
        for _ in range(PRIOR_ITERATIONS):
            prior = min(max(_expected_matches(scratch, linker, prior), 1.0) / total, 0.5)
        linker._settings_obj._probability_two_random_records_match = prior
        model: dict[str, Any] = linker.misc.save_model_to_json()
    recall = min(max(sure / (prior * total), 0.05), 1.0)
    _floor_m(model)
    model[META_KEY] = {
        "prior_rule": PRIOR_RULE,
        "prior_rule_recall": round(recall, 4),
        "trained_records": n,
        "trained_prior": prior,
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "trained_on": description,
        "seed": seed,
    }
    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    return out_json


def train_person_model(
    con_or_warehouse_path: duckdb.DuckDBPyConnection | str | Path,
    out_json: Path,
    seed: int = 1,
    description: str = "",
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
        add_blocking_columns(con, "_fl_train")
        return train_on_table(con, "_fl_train", out_json, seed, description)
    finally:
        if own:
            con.close()
