"""Splink 5 (DuckDB) scoring of candidate person pairs with the trained model.

The monthly run loads the committed model and never retrains; the standalone
link command may re-estimate u (how often values agree by chance) on its own
inputs, because chance agreement depends on the population, while m (how
records of one person disagree) is a property of data entry and transfers.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from pathlib import Path
from typing import Any

import duckdb

from matchers.clustering import GENERATION_DAYS
from matchers.comparisons import (
    FIRST_NAME_COMPATIBLE_SQL,
    SWAPPED_SQL,
    blocking_columns_sql,
    blocking_rules_settings,
    person_settings,
)

DEFAULT_MODEL_PATH = Path(__file__).parent / "model" / "person_model.json"
SPLINK_COLUMNS = [
    "unique_id", "first_name", "first_name_groups", "other_names", "last_name",
    "last_name_tokens", "dob", "dob_str", "sex", "postcode", "postcodes", "postcode_sector",
    "postcode_district", "postcode_is_location", "address", "upn", "nhs_number", "ni_number",
]

logging.getLogger("splink").setLevel(logging.WARNING)


# The prior (the share of all record pairs that are one person) falls as the
# county grows, so it cannot be a constant in the committed model: each run
# counts the pairs agreeing on forename, surname and DOB and scales the count up
# by the share of true pairs that rule finds (its recall, measured at training).
PRIOR_RULE = "l.first_name = r.first_name AND l.last_name = r.last_name AND l.dob = r.dob"
DEFAULT_PRIOR_RECALL = 0.7
META_KEY = "famlink"


# Term-frequency adjustments need a population to measure frequencies in: in a
# file of ten people every name looks common. Below this many records the
# model's average u values are used instead.
MIN_TF_RECORDS = 2000


def load_model(model_path: Path | None = None, link_type: str = "dedupe_only",
               term_frequencies: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Splink settings, famlink metadata) of the trained model, or of the
    untrained defaults when no model file exists."""
    path = model_path or DEFAULT_MODEL_PATH
    settings = json.loads(path.read_text()) if path.exists() else person_settings()
    settings = deepcopy(settings)
    meta = settings.pop(META_KEY, {}) or {}
    if not term_frequencies:
        for comparison in settings["comparisons"]:
            for level in comparison["comparison_levels"]:
                for key in ("tf_adjustment_column", "tf_adjustment_weight",
                            "tf_minimum_u_value"):
                    level.pop(key, None)
    settings["link_type"] = link_type
    settings.pop("linker_uid", None)
    settings["blocking_rules_to_generate_predictions"] = blocking_rules_settings()
    return settings, meta


def load_model_settings(model_path: Path | None = None, link_type: str = "dedupe_only") -> dict:
    """The trained model as a Splink settings dict (see ``load_model``)."""
    return load_model(model_path, link_type)[0]


def prior_rule_pairs(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Record pairs of ``table`` that agree exactly on forename, surname and DOB."""
    return con.execute(
        f"""SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (
            SELECT count(*) AS n FROM {table}
            WHERE first_name IS NOT NULL AND last_name IS NOT NULL AND dob IS NOT NULL
            GROUP BY first_name, last_name, dob)"""
    ).fetchall()[0][0]


def estimate_prior(con: duckdb.DuckDBPyConnection, table: str, recall: float) -> float:
    """Probability that two random records of ``table`` are one person."""
    n = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    total = max(n * (n - 1) / 2, 1)
    est = max(prior_rule_pairs(con, table), 1) / max(recall, 1e-3) / total
    return float(min(max(est, 1e-12), 0.5))


def add_blocking_columns(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Add the derived columns the blocking rules use to a temp table, in place."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {blocking_columns_sql(table)}")


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


def generation_guard_sql() -> str:
    """True when a pair must never link automatically: both dates of birth known,
    a generation apart, and not a typing slip of each other (a parent and child
    of one name at one address look alike on everything else)."""
    return f"""(
        dob_l IS NOT NULL AND dob_r IS NOT NULL
        AND abs(date_diff('day', dob_l, dob_r)) >= {GENERATION_DAYS}
        AND NOT (damerau_levenshtein(dob_str_l, dob_str_r) <= 1
                 OR (year(dob_l) = year(dob_r) AND month(dob_l) = day(dob_r)
                     AND day(dob_l) = month(dob_r)))
        AND NOT coalesce(upn_l = upn_r OR nhs_number_l = nhs_number_r
                         OR ni_number_l = ni_number_r, false)
    )"""


def household_guard_sql() -> str:
    """True when only household evidence agrees: surname and address are shared by
    everyone at a house, so a link also needs the person, a full forename or a
    date of birth that agrees (or a strong identifier)."""
    return f"""(
        NOT coalesce(
            (length(first_name_l) > 1 AND length(first_name_r) > 1 AND (
                first_name_l = first_name_r
                OR list_has_any(first_name_groups_l, first_name_groups_r)
                OR jaro_winkler_similarity(first_name_l, first_name_r) >= 0.92
                OR (length(first_name_l) >= 4
                    AND damerau_levenshtein(first_name_l, first_name_r) <= 1)))
            OR list_contains(other_names_r, first_name_l)
            OR list_contains(other_names_l, first_name_r)
            OR ({SWAPPED_SQL}), false)
        AND NOT coalesce(dob_l = dob_r OR damerau_levenshtein(dob_str_l, dob_str_r) <= 1
            OR (year(dob_l) = year(dob_r) AND month(dob_l) = day(dob_r)
                AND day(dob_l) = month(dob_r)), false)
        AND NOT coalesce(upn_l = upn_r OR nhs_number_l = nhs_number_r
                         OR ni_number_l = ni_number_r, false)
    )"""


@contextmanager
def splink_session(
    con: duckdb.DuckDBPyConnection, table: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private in-memory DuckDB holding a copy of ``table`` for Splink to work in.

    Splink writes its working tables (blocked pairs, comparison vectors, term
    frequencies) as ordinary tables of the connection it is given; in the
    warehouse they would be persisted and published with it. The scratch
    database takes the warehouse connection's memory limit and thread count
    and spills to a temporary directory of its own.
    """
    limit, threads = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('threads')").fetchall()[0]
    tmp = tempfile.mkdtemp(prefix="famlink-splink-")
    scratch = duckdb.connect(config={"threads": int(threads)})
    try:
        scratch.execute(f"SET memory_limit = '{limit}'")
        scratch.execute(f"SET temp_directory = '{tmp}'")
        scratch.register("_fl_in", con.sql(f"SELECT * FROM {table}").to_arrow_table())
        scratch.execute(f"CREATE TABLE {table} AS SELECT * FROM _fl_in")
        scratch.unregister("_fl_in")
        yield scratch
    finally:
        scratch.close()
        shutil.rmtree(tmp, ignore_errors=True)


def predict_pairs(
    con: duckdb.DuckDBPyConnection,
    table: str,
    settings: dict[str, Any],
    out_table: str,
    min_probability: float = 0.01,
    reestimate_u: bool = False,
    seed: int = 1,
) -> str:
    """Score the blocked pairs of ``table`` into the temp table ``out_table`` of
    ``con``, with the guard columns; Splink runs in a scratch database."""
    with splink_session(con, table) as scratch:
        linker = make_linker(scratch, table, settings)
        if reestimate_u:
            linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=seed)
        df = linker.inference.predict(threshold_match_probability=min_probability)
        pairs = scratch.sql(
            f"SELECT *, {twin_guard_sql()} AS twin_guard, "
            f"{generation_guard_sql()} AS generation_guard, "
            f"{household_guard_sql()} AS household_guard FROM {df.physical_name}"
        ).to_arrow_table()
    con.register("_fl_pairs_in", pairs)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out_table} AS SELECT * FROM _fl_pairs_in")
    con.unregister("_fl_pairs_in")
    return out_table
