"""Why two records are one person: Splink's waterfall of the pairs that matter.

Splink's predict output (with ``retain_intermediate_calculation_columns``) has,
per comparison, ``gamma_<c>`` (the level: -1 for a null level, then counting
down from the first level), ``mw_<c>`` (the level's match weight, log2 m/u)
and, where the comparison has term-frequency adjustments, ``mw_tf_adj_<c>``.
The pair's match weight is the prior's weight plus every comparison's weight.
``linkage.link_waterfall`` keeps that sum step by step, with each level's
label from the model, but only for the pairs an auditor asks about: the
probabilistic links of cohort members' records and the doubtful pairs (a
cohort member against a person linked to no member). Every other pair keeps
only its total in ``linkage.person_pairs``.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb

PRIOR_LABEL = "starting match weight (prior)"
TABLE = "linkage.link_waterfall"
COLUMNS = (
    "record_id_l VARCHAR, record_id_r VARCHAR, profile_l BIGINT, profile_r BIGINT, "
    "kept_as VARCHAR, step INTEGER, comparison VARCHAR, gamma INTEGER, label VARCHAR, "
    "level_weight DOUBLE, tf_adjustment DOUBLE, match_weight DOUBLE, running_weight DOUBLE"
)


def prior_weight(prior: float) -> float:
    """The prior as a match weight, log2(p / (1 - p)) (Splink's starting bar)."""
    return math.log2(prior / (1 - prior))


def probability(weight: float) -> float:
    """A match weight as a probability, 2^w / (1 + 2^w), the way Splink computes it."""
    if weight >= 0:
        return 1.0 / (1.0 + 2.0 ** -weight)
    return 2.0 ** weight / (1.0 + 2.0 ** weight)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def level_label_sql(comparison: dict[str, Any]) -> str:
    """A CASE naming the level a pair's gamma stands for. Several null levels share
    gamma -1 (a surname swapped with the forename is weighed by the forename): their
    own conditions, in order, tell which one it was."""
    name = comparison["output_column_name"]
    levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
    nulls = [lv for lv in comparison["comparison_levels"] if lv.get("is_null_level")]
    gamma = _ident(f"gamma_{name}")
    whens = [f"WHEN {len(levels) - 1 - i} THEN {_quote(lv.get('label_for_charts') or '')}"
             for i, lv in enumerate(levels)]
    if len(nulls) == 1:
        whens.append(f"WHEN -1 THEN {_quote(nulls[0].get('label_for_charts') or 'null')}")
    elif nulls:
        inner = " ".join(f"WHEN {lv['sql_condition']} THEN "
                         f"{_quote(lv.get('label_for_charts') or 'null')}" for lv in nulls)
        alt = _quote(" or ".join(lv.get("label_for_charts") or "null" for lv in nulls))
        whens.append(f"WHEN -1 THEN coalesce(CASE {inner} END, {alt})")
    return f"CASE {gamma} " + " ".join(whens) + " END"


def _kept_pairs_sql() -> str:
    """The pairs worth a waterfall: a cohort member's record linked probabilistically
    (to the record ``matched_to_record_id`` names), and the doubtful pairs."""
    return """
        SELECT least(a.profile_id, b.profile_id) AS profile_l,
               greatest(a.profile_id, b.profile_id) AS profile_r, 'link' AS kept_as
        FROM linkage.record_links AS rl
        JOIN _fl_profiles AS a ON a.rep_record_id = rl.record_id
        JOIN _fl_profiles AS b ON b.rep_record_id = rl.matched_to_record_id
        WHERE rl.match_method = 'probabilistic' AND rl.person_ref IS NOT NULL
        UNION ALL
        SELECT c.profile_l, c.profile_r, 'doubtful'
        FROM _fl_review_cand AS c
        JOIN _fl_profiles AS a ON a.profile_id = c.profile_l
        JOIN _fl_profiles AS b ON b.profile_id = c.profile_r
        JOIN linkage.record_links AS la ON la.record_id = a.rep_record_id
        JOIN linkage.record_links AS lb ON lb.record_id = b.rep_record_id
        WHERE (la.person_ref IS NULL) <> (lb.person_ref IS NULL)"""


def write_link_waterfall(
    con: duckdb.DuckDBPyConnection, settings: dict[str, Any] | None, pred_table: str = "_fl_pred"
) -> int:
    """``linkage.link_waterfall`` from the scored pairs ``pred_table`` (Splink's predict
    output) for the kept pairs; empty when nothing was scored or the output lacks the
    per-comparison weights. Returns the number of pairs kept."""
    con.execute(f"CREATE OR REPLACE TABLE {TABLE} ({COLUMNS})")
    if settings is None:
        return 0
    have = {r[0] for r in con.execute(f"DESCRIBE {pred_table}").fetchall()}
    comparisons = [c for c in settings["comparisons"]
                   if {f"gamma_{c['output_column_name']}",
                       f"mw_{c['output_column_name']}"} <= have]
    if not comparisons or len(comparisons) < len(settings["comparisons"]):
        return 0
    prior = prior_weight(settings["probability_two_random_records_match"])
    keys = "p.profile_l, p.profile_r, p.kept_as"
    parts = [f"""SELECT {keys}, 0 AS step, 'prior' AS comparison, NULL::INTEGER AS gamma,
                 {_quote(PRIOR_LABEL)} AS label, {prior!r} AS level_weight,
                 0.0 AS tf_adjustment FROM p"""]
    for i, c in enumerate(comparisons, start=1):
        name = c["output_column_name"]
        tf = (f"coalesce({_ident('mw_tf_adj_' + name)}, 0.0)"
              if f"mw_tf_adj_{name}" in have else "0.0")
        parts.append(
            f"""SELECT {keys}, {i}, {_quote(name)}, {_ident('gamma_' + name)},
                {level_label_sql(c)}, coalesce({_ident('mw_' + name)}, 0.0), {tf} FROM p""")
    con.execute(
        f"""INSERT INTO {TABLE}
        WITH kept AS (
            SELECT profile_l, profile_r, min(kept_as) AS kept_as
            FROM ({_kept_pairs_sql()}) GROUP BY ALL
        ), p AS (
            SELECT k.profile_l, k.profile_r, k.kept_as, pr.*
            FROM kept AS k JOIN {pred_table} AS pr
              ON least(CAST(pr.unique_id_l AS BIGINT), CAST(pr.unique_id_r AS BIGINT))
                 = k.profile_l
             AND greatest(CAST(pr.unique_id_l AS BIGINT), CAST(pr.unique_id_r AS BIGINT))
                 = k.profile_r
        ), steps AS (
            SELECT profile_l, profile_r, kept_as, step, comparison, gamma, label,
                   level_weight, tf_adjustment FROM (
                {" UNION ALL ".join(parts)})
        )
        SELECT a.rep_record_id, b.rep_record_id, s.profile_l, s.profile_r, s.kept_as,
               s.step, s.comparison, s.gamma, s.label, s.level_weight, s.tf_adjustment,
               s.level_weight + s.tf_adjustment AS match_weight,
               sum(s.level_weight + s.tf_adjustment) OVER (
                   PARTITION BY s.profile_l, s.profile_r ORDER BY s.step) AS running_weight
        FROM steps AS s
        JOIN _fl_profiles AS a ON a.profile_id = s.profile_l
        JOIN _fl_profiles AS b ON b.profile_id = s.profile_r
        ORDER BY s.profile_l, s.profile_r, s.step"""
    )
    return con.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT profile_l, profile_r FROM {TABLE})"
    ).fetchall()[0][0]


STEP_COLUMNS = ("comparison, label, gamma, level_weight, tf_adjustment, match_weight, "
                "running_weight")


def pair_waterfall(
    con: duckdb.DuckDBPyConnection, record_id: str, other_record_id: str
) -> dict[str, Any] | None:
    """The waterfall of one pair of records, as plain data (for the audit pack and its
    claim-time snapshot): steps, the final match weight and its probability; None
    when the warehouse kept none for the pair (or predates the table)."""
    try:
        rows = con.execute(
            f"""SELECT {STEP_COLUMNS}
                FROM {TABLE}
                WHERE (record_id_l = ? AND record_id_r = ?)
                   OR (record_id_l = ? AND record_id_r = ?)
                ORDER BY step""",
            [record_id, other_record_id, other_record_id, record_id]).fetchall()
    except duckdb.Error:
        return None
    return waterfall_of(rows, other_record_id)


def waterfall_of(rows: list[tuple[Any, ...]], other_record_id: str) -> dict[str, Any] | None:
    """``pair_waterfall`` from a pair's rows of ``STEP_COLUMNS``, in step order (the audit
    packs of a run's claims read all their pairs' rows at once)."""
    if not rows:
        return None
    steps = [{"comparison": c, "label": lab, "gamma": g, "level_weight": lw,
              "tf_adjustment": tf, "match_weight": mw, "running_weight": run}
             for c, lab, g, lw, tf, mw, run in rows]
    final = sum(s["match_weight"] for s in steps)
    return {"matched_to_record_id": other_record_id, "steps": steps,
            "match_weight": final, "match_probability": probability(final)}
