"""``famlink train-linkage``: estimate the person model's parameters.

u (chance agreement) by random sampling, m (how one person's records differ)
by expectation maximisation over blocks that leave each comparison free to be
learnt at least once. The prior is not stored as a constant (it depends on
the county's size): training measures the recall of a near-certain rule
(forename, surname and DOB all equal) against the model's own expected number
of matches, and each run scales that rule's count by it (``estimate_prior``).
Training starts from the committed model and writes a new file (the committed
model is replaced only on purpose: ``famlink train-linkage --replace``); the
monthly run starts from the committed model and learns from its own data.
"""

from __future__ import annotations

import json
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from matchers.linkage import _profiles
from matchers.probabilistic import (
    DEFAULT_PRIOR_RECALL,
    EM_BLOCKS,
    META_KEY,
    PRIOR_RULE,
    SPLINK_COLUMNS,
    add_blocking_columns,
    captured_splink_messages,
    estimate_prior,
    floor_m,
    load_model,
    make_linker,
    match_weight,
    prior_rule_pairs,
    splink_session,
)
from matchers.records import build_person_records

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


@dataclass
class TrainingResult:
    """What ``train-linkage`` wrote, the parameters before and after, and what
    Splink warned about (kept, not printed)."""

    out: Path
    before: dict[str, Any]
    after: dict[str, Any]
    messages: list[str] = field(default_factory=list)


def train_on_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    out_json: Path,
    seed: int = 1,
    description: str = "",
    start_model: Path | None = None,
) -> TrainingResult:
    """Train on a table with the Splink person columns, starting from
    ``start_model`` (default: the committed model); write the model JSON."""
    n = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    total = max(n * (n - 1) / 2, 1)
    sure = prior_rule_pairs(con, table)
    before, meta = load_model(start_model)
    settings = deepcopy(before)
    settings["probability_two_random_records_match"] = estimate_prior(
        con, table, meta.get("prior_rule_recall", DEFAULT_PRIOR_RECALL))
    with splink_session(con, table) as scratch, captured_splink_messages() as msgs:
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
    floor_m(model, before)
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
    return TrainingResult(out_json, before, model, list(msgs))


def train_person_model(
    con_or_warehouse_path: duckdb.DuckDBPyConnection | str | Path,
    out_json: Path,
    seed: int = 1,
    description: str = "",
    start_model: Path | None = None,
) -> TrainingResult:
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
        return train_on_table(con, "_fl_train", out_json, seed, description, start_model)
    finally:
        if own:
            con.close()


def parameter_changes(before: dict[str, Any], after: dict[str, Any]) -> list[tuple]:
    """(comparison, level label, m before, m after, u before, u after, weight
    before, weight after) for every non-null level, in the model's order."""
    def levels(model: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(c["output_column_name"], lv.get("label_for_charts", lv["sql_condition"])): lv
                for c in model["comparisons"] for lv in c["comparison_levels"]
                if not lv.get("is_null_level")}

    old, new = levels(before), levels(after)
    rows = []
    for key, lv in new.items():
        was = old.get(key, {})
        m0, m1 = was.get("m_probability"), lv.get("m_probability")
        u0, u1 = was.get("u_probability"), lv.get("u_probability")
        rows.append((*key, m0, m1, u0, u1, match_weight(m0, u0), match_weight(m1, u1)))
    return rows


def default_out(warehouse: Path, today: str | None = None) -> Path:
    """``person_model_<date>.json`` beside the warehouse: training never replaces
    the committed model by default."""
    day = today or datetime.now(UTC).strftime("%Y-%m-%d")
    return Path(warehouse).resolve().parent / f"person_model_{day}.json"


def check_out(out: Path, replace: bool) -> None:
    """Refuse to overwrite an existing model file (the committed one included)
    unless ``replace``; a one-line ValueError says which and how."""
    from matchers.probabilistic import DEFAULT_MODEL_PATH

    out = Path(out)
    if replace or not out.exists():
        return
    what = ("the committed model" if out.resolve() == DEFAULT_MODEL_PATH.resolve()
            else "an existing model file")
    raise ValueError(f"{out}: is {what}; pass --replace to overwrite it, or --out a new file")


def summary_lines(result: TrainingResult) -> list[str]:
    """The before/after parameter summary ``train-linkage`` prints (plain text)."""
    def f(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    lines = [f"{'comparison':11s} {'level':30s} {'m before>after':15s} "
             f"{'u before>after':17s} {'weight before>after'}"]
    for comp, label, m0, m1, u0, u1, w0, w1 in parameter_changes(result.before, result.after):
        lines.append(f"{comp[:11]:11s} {label[:30]:30s} {f(m0, '.4f')}>{f(m1, '.4f'):9s} "
                     f"{f(u0, '.1e')}>{f(u1, '.1e'):9s} {f(w0, '+.2f')}>{f(w1, '+.2f')}")
    return lines
