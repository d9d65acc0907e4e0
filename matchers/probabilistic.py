"""Splink 5 (DuckDB) scoring of candidate person pairs, learning from the data at hand.

The committed model is the starting point. Where there are enough records
(``MIN_TRAIN_RECORDS``), ``predict_pairs(learn=True)`` re-estimates u (how
often values agree by chance: a property of the population) by random sampling
and m (how one person's records disagree: a property of each source's data
entry) by expectation maximisation on the records being linked, so a source
that mistypes dates more often is seen; levels whose m is fixed keep it (their
reason is in ``comparisons``). Where the data are too small, or training fails,
the committed model is used as it is, and the result says so
(``ModelUsed.note``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from matchers.clustering import GENERATION_DAYS
from matchers.comparisons import (
    DERIVED_COLUMNS,
    DOB_SLIP_SQL,
    FIRST_NAME_COMPATIBLE_SQL,
    FULL_FORENAME_AGREES_SQL,
    IDENTIFIER_AGREES_SQL,
    blocking_columns_sql,
    derived_columns_sql,
    install_comparison_macros,
    person_settings,
)
from matchers.spark import linkage_backend, spark_predict

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

# Training needs enough records of one person to show how they differ: below
# this many records the committed model is used as it is. Above MAX, training
# runs on a random sample of this many (EM's blocks grow with the square).
MIN_TRAIN_RECORDS = 1000
MAX_TRAIN_RECORDS = 100_000
# Random pairs for u: chance agreement of the commoner levels settles well
# before this; the rarest levels keep the committed model's u when unseen.
U_SAMPLE_PAIRS = 1e5
# EM blocks: each leaves the comparisons it does not block on free to be learnt.
EM_BLOCKS = [
    "l.dob = r.dob",
    "l.first_name = r.first_name AND l.last_name = r.last_name",
    "l.postcode = r.postcode AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
]
# No level is impossible for one person's records: EM on a small or clean data
# set can drive an m towards zero (a weight of -80 bits); it is floored here.
M_FLOOR = 1e-4


@dataclass
class ModelUsed:
    """The parameters a scoring run used, and whether they were learnt from its data."""

    settings: dict[str, Any]
    trained: bool
    note: str
    records: int
    messages: list[str] = field(default_factory=list)


@contextmanager
def captured_splink_messages() -> Iterator[list[str]]:
    """Collect Splink's log warnings and Python warnings instead of printing them
    (a summary line is the caller's to print)."""
    got: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                got.append(_first_words(record.getMessage()))

    log = logging.getLogger("splink")
    handler, old_propagate, old_level = _Keep(), log.propagate, log.level
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield got
        got.extend(_first_words(str(w.message)) for w in caught)
    finally:
        log.removeHandler(handler)
        log.propagate = old_propagate
        log.setLevel(old_level)


def _first_words(message: str) -> str:
    """A message's first meaningful line (Splink's start with a bare "WARNING:")."""
    lines = [ln.strip() for ln in message.splitlines()]
    lines = [ln for ln in lines if ln and ln.rstrip(":").upper() != "WARNING"]
    return lines[0][:100] if lines else ""


def messages_summary(messages: list[str]) -> str:
    """One line for what Splink warned about during training."""
    msgs = [m for m in messages if m]
    if not msgs:
        return "no training warnings"
    first = sorted(set(msgs), key=msgs.index)[:3]
    return f"{len(msgs)} training warnings from Splink, e.g. " + "; ".join(first)


def floor_m(model: dict[str, Any], start: dict[str, Any]) -> None:
    """Floor every trained m; a level never observed keeps its starting value."""
    begin = {(c["output_column_name"], lv["sql_condition"]): lv.get("m_probability")
             for c in start["comparisons"] for lv in c["comparison_levels"]}
    for c in model["comparisons"]:
        for lv in c["comparison_levels"]:
            if lv.get("is_null_level"):
                continue
            m = lv.get("m_probability")
            if not isinstance(m, (int, float)) or math.isnan(m):
                m = begin.get((c["output_column_name"], lv["sql_condition"])) or M_FLOOR
            lv["m_probability"] = max(float(m), M_FLOOR)


def _round_parameters(model: dict[str, Any], digits: int = 9) -> None:
    """Round learnt m and u to ``digits`` significant digits: parallel sums differ
    in the last bits from run to run, and a rerun must score exactly alike."""
    for c in model["comparisons"]:
        for lv in c["comparison_levels"]:
            for key in ("m_probability", "u_probability"):
                if isinstance(lv.get(key), float):
                    lv[key] = float(f"{lv[key]:.{digits}g}")


def learn_model(
    scratch: duckdb.DuckDBPyConnection, table: str, settings: dict[str, Any], seed: int = 1
) -> dict[str, Any]:
    """u by random sampling, m by EM on (a sample of) ``table``, starting from
    ``settings``; the learnt Splink model (fixed m levels unchanged)."""
    n = scratch.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    train = table
    if n > MAX_TRAIN_RECORDS:
        train = f"{table}_train"
        scratch.execute(
            # chosen by a hash of the record's id, not DuckDB's reservoir sample, which
            # differs between runs when several threads read: one drop, one model
            f"CREATE OR REPLACE TABLE {train} AS SELECT * FROM {table} "
            f"ORDER BY hash(unique_id || '_{seed}'), unique_id LIMIT {MAX_TRAIN_RECORDS}")
    linker = make_linker(scratch, train, deepcopy(settings))
    linker.training.estimate_u_using_random_sampling(
        max_pairs=U_SAMPLE_PAIRS, seed=seed, num_chunks=1)
    for rule in EM_BLOCKS:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True)
    model: dict[str, Any] = linker.misc.save_model_to_json()
    floor_m(model, settings)
    _round_parameters(model)
    model["probability_two_random_records_match"] = settings[
        "probability_two_random_records_match"]
    model["blocking_rules_to_generate_predictions"] = settings[
        "blocking_rules_to_generate_predictions"]
    if train != table:
        scratch.execute(f"DROP TABLE {train}")
    return model


def match_weight(m: float | None, u: float | None) -> float | None:
    """log2(m / u), the level's match weight (None when either is missing)."""
    if not m or not u:
        return None
    return math.log2(m / u)


def parameter_rows(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per comparison level: comparison, level, label, m, u, match weight,
    whether m is fixed (the parameter table the warehouse and report keep)."""
    rows = []
    for c in settings["comparisons"]:
        for i, lv in enumerate(c["comparison_levels"]):
            if lv.get("is_null_level"):
                continue
            m, u = lv.get("m_probability"), lv.get("u_probability")
            rows.append({
                "comparison": c["output_column_name"], "level": i,
                "label": lv.get("label_for_charts", lv["sql_condition"]),
                "m_probability": m, "u_probability": u, "match_weight": match_weight(m, u),
                "fixed_m": bool(lv.get("fix_m_probability", False)),
                "tf_column": lv.get("tf_adjustment_column"),
            })
    return rows


def model_charts(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Splink's own match-weights and m/u parameter charts of ``settings`` as
    Vega-Lite specs (data inline), for a report to render its own way."""
    return [c.chart_dict for c in _splink_charts(settings)]


def model_charts_html(settings: dict[str, Any]) -> list[str]:
    """The same charts as Splink's own self-contained HTML pages (Vega bundled
    inline, nothing fetched from a network), one page per chart."""
    return [c.to_html(inline=True) for c in _splink_charts(settings)]


def _splink_charts(settings: dict[str, Any]) -> list[Any]:
    """Splink's match-weights and m/u parameter charts for a model's settings."""
    import duckdb as _duckdb

    con = _duckdb.connect()
    try:
        cols = sorted({c for comp in settings["comparisons"] for lv in comp["comparison_levels"]
                       for c in _columns_of(lv["sql_condition"])} | {"unique_id"})
        con.execute("CREATE TABLE _fl_empty AS SELECT " + ", ".join(
            f"NULL::VARCHAR AS {c}" for c in cols) + " WHERE false")
        clean = deepcopy(settings)
        clean.pop(META_KEY, None)
        clean["blocking_rules_to_generate_predictions"] = []
        clean["link_type"] = "dedupe_only"
        linker = make_linker(con, "_fl_empty", clean)
        return [linker.visualisations.match_weights_chart(),
                linker.visualisations.m_u_parameters_chart()]
    finally:
        con.close()


def _columns_of(sql: str) -> set[str]:
    import re

    return {m.group(1) for m in re.finditer(r"\b([a-z_]+)_[lr]\b", sql)}


def load_model(model_path: Path | None = None, link_type: str = "dedupe_only",
               term_frequencies: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Splink settings, famlink metadata): the comparisons as the code defines
    them, with the m and u values of the trained model file wherever it has the
    same level (by comparison and label; a fixed m always comes from the code).
    A level the file does not know keeps its starting values."""
    path = model_path or DEFAULT_MODEL_PATH
    saved = json.loads(path.read_text()) if path.exists() else person_settings()
    meta = saved.pop(META_KEY, {}) or {}
    settings = person_settings()
    settings["probability_two_random_records_match"] = saved.get(
        "probability_two_random_records_match", settings["probability_two_random_records_match"])
    trained = {(c["output_column_name"], lv.get("label_for_charts")): lv
               for c in saved.get("comparisons", []) for lv in c["comparison_levels"]}
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            got = trained.get((comparison["output_column_name"], level.get("label_for_charts")))
            if got is None:
                continue
            if not level.get("fix_m_probability") and got.get("m_probability") is not None:
                level["m_probability"] = got["m_probability"]
            if got.get("u_probability") is not None:
                level["u_probability"] = got["u_probability"]
    if not term_frequencies:
        for comparison in settings["comparisons"]:
            for level in comparison["comparison_levels"]:
                for key in ("tf_adjustment_column", "tf_adjustment_weight",
                            "tf_minimum_u_value"):
                    level.pop(key, None)
    settings["link_type"] = link_type
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
    return Linker(sdf, settings, log_level=None, validate_settings=False)


def twin_guard_sql(alias: str = "") -> str:
    """True when a pair must never link: same DOB, both forenames present and
    incompatible, and no strong identifier agreeing (the twin signature)."""
    return _aliased(f"""(
        dob_l = dob_r AND first_name_l IS NOT NULL AND first_name_r IS NOT NULL
        AND NOT {FIRST_NAME_COMPATIBLE_SQL}
        AND NOT coalesce({IDENTIFIER_AGREES_SQL}, false)
    )""", alias)


def _aliased(sql: str, alias: str) -> str:
    """``sql`` with every ``<column>_l``/``<column>_r`` prefixed by ``alias``."""
    if not alias:
        return sql
    return re.sub(r"\b([a-z_]+_[lr])\b", rf"{alias}\1", sql)


def generation_guard_sql() -> str:
    """True when a pair must never link automatically: both dates of birth known,
    a generation apart, and not a typing slip of each other (a parent and child
    of one name at one address look alike on everything else)."""
    return f"""(
        dob_l IS NOT NULL AND dob_r IS NOT NULL
        AND abs(date_diff('day', dob_l, dob_r)) >= {GENERATION_DAYS}
        AND NOT {DOB_SLIP_SQL}
        AND NOT coalesce({IDENTIFIER_AGREES_SQL}, false)
    )"""


def household_guard_sql() -> str:
    """True when only household evidence agrees: surname and address are shared by
    everyone at a house, so a link also needs the person, a full forename or a
    date of birth that agrees (or a strong identifier)."""
    return f"""(
        NOT coalesce({FULL_FORENAME_AGREES_SQL}, false)
        AND NOT coalesce(dob_l = dob_r OR {DOB_SLIP_SQL}, false)
        AND NOT coalesce({IDENTIFIER_AGREES_SQL}, false)
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
        install_comparison_macros(scratch)
        scratch.register("_fl_in", con.sql(f"SELECT * FROM {table}").to_arrow_table())
        present = frozenset(r[0] for r in scratch.execute("DESCRIBE _fl_in").fetchall())
        scratch.execute(f"CREATE TABLE {table} AS {derived_columns_sql('_fl_in', present)}")
        scratch.unregister("_fl_in")
        yield scratch
    finally:
        scratch.close()
        shutil.rmtree(tmp, ignore_errors=True)


def new_pairs_only(settings: dict[str, Any], flag: str = "is_new",
                   pushdown: bool = False) -> dict[str, Any]:
    """``settings`` with every blocking rule narrowed to pairs with at least one
    record flagged ``flag``: the pairs an incremental run has to score (a pair of
    two unchanged records keeps the score it was given).

    ``pushdown``: each rule twice, new on the left, then new on the right only, so
    that a condition on one side is pushed down to that side's scan and each join
    starts from the few new records: for a whole county given to Splink. Given only
    the rows near the new ones (``near_new_records``), one rule with ``l.flag OR
    r.flag`` is cheaper (half the joins and exploded tables)."""
    out = deepcopy(settings)
    sides = ((f"l.{flag}", f"r.{flag} AND NOT l.{flag}") if pushdown
             else (f"(l.{flag} OR r.{flag})",))
    out["blocking_rules_to_generate_predictions"] = [
        {**rule, "blocking_rule": f"({rule['blocking_rule']}) AND {side}"}
        for rule in settings["blocking_rules_to_generate_predictions"]
        for side in sides]
    return out


def _rule_keys(rule: str) -> list[tuple[str, str]] | None:
    """A blocking rule as its equalities, each (left side over ``l``, right side over
    ``r``); None when the rule is not a conjunction of such equalities."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(rule, dialect="duckdb")
    keys = []
    for part in tree.flatten() if isinstance(tree, exp.And) else [tree]:
        while isinstance(part, exp.Paren):
            part = part.this
        if not isinstance(part, exp.EQ):
            return None
        sides = [{c.table for c in side.find_all(exp.Column)} for side in (part.left, part.right)]
        if sides == [{"l"}, {"r"}]:
            keys.append((part.left.sql("duckdb"), part.right.sql("duckdb")))
        elif sides == [{"r"}, {"l"}]:
            keys.append((part.right.sql("duckdb"), part.left.sql("duckdb")))
        else:
            return None
    return keys


# Derived columns too dear to compute for every row of the county just to find the
# rows near the new ones: an equality on them is left out there (a superset of rows).
NEAR_SKIPPED_COLUMNS = frozenset({"first_name_sdx", "last_name_sdx"})


def near_new_records(con: duckdb.DuckDBPyConnection, table: str, settings: dict[str, Any],
                     out: str, flag: str = "is_new") -> int | None:
    """``out`` (unique_id): every row of ``table`` that a blocking rule of ``settings``
    could pair with a row flagged ``flag``, the flagged rows included. They are the
    only rows an incremental scoring (``new_pairs_only``) can pair, so Splink is given
    these instead of the whole county. Each rule is read as its equalities between
    the two sides (``_rule_keys``): a row is near when its side of every equality
    (but those on ``NEAR_SKIPPED_COLUMNS``) equals a new row's other side. Returns
    the number of rows, or None when a rule is not such a conjunction (then every
    row is needed)."""
    from sqlglot import exp, parse_one

    install_comparison_macros(con)
    rules = []
    for rule in settings["blocking_rules_to_generate_predictions"]:
        keys = _rule_keys(rule["blocking_rule"])
        if keys is None:
            return None
        keys = [k for k in keys if not any(
            c.name in NEAR_SKIPPED_COLUMNS for side in k
            for c in parse_one(side, dialect="duckdb").find_all(exp.Column))]
        if not keys:
            return None
        rules.append((keys, rule.get("arrays_to_explode") or []))
    have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    used = {c.name for keys, _ in rules for k in keys for side in k
            for c in parse_one(side, dialect="duckdb").find_all(exp.Column)}
    if missing := used - have - set(DERIVED_COLUMNS):
        raise ValueError(f"blocking rules read columns {sorted(missing)} not in {table}")
    cols = ", ".join(sorted(used & have))
    derived = "".join(f", {DERIVED_COLUMNS[c]} AS {c}" for c in sorted(used - have))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _fl_near_keys AS "
                f"SELECT unique_id, {flag}, {cols}{derived} FROM {table}")
    parts = [f"SELECT unique_id FROM _fl_near_keys WHERE {flag}"]
    for keys, exploded in rules:
        src = (f"(SELECT * REPLACE ({', '.join(f'unnest({c}) AS {c}' for c in exploded)}) "
               "FROM _fl_near_keys)" if exploded else "_fl_near_keys")
        # new on the left and an old row on the right; new on the right
        for new_side, old_side, new_i, old_i in (("l", "r", 0, 1), ("r", "l", 1, 0)):
            probe = ", ".join(f"{k[new_i]} AS k{i}" for i, k in enumerate(keys))
            on = " AND ".join(f"{k[old_i]} = k.k{i}" for i, k in enumerate(keys))
            parts.append(
                f"SELECT {old_side}.unique_id FROM {src} AS {old_side} SEMI JOIN "
                f"(SELECT DISTINCT {probe} FROM {src} AS {new_side} WHERE {new_side}.{flag}) "
                f"AS k ON {on}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS " + "\nUNION\n".join(parts))
    con.execute("DROP TABLE _fl_near_keys")
    return con.execute(f"SELECT count(*) FROM {out}").fetchall()[0][0]


def tf_columns(settings: dict[str, Any]) -> list[str]:
    """The columns whose term frequencies adjust a level of ``settings``."""
    return sorted({lv["tf_adjustment_column"] for c in settings["comparisons"]
                   for lv in c["comparison_levels"] if lv.get("tf_adjustment_column")})


def term_frequencies_sql(table: str, columns: list[str]) -> str:
    """``(tf_column, value, tf)`` of ``table``: each value's share of the non-empty
    values of its column, as Splink computes it (``compute_tf_table``)."""
    parts = [f"""SELECT '{c}' AS tf_column, CAST({c} AS VARCHAR) AS value,
                 CAST(count(*) AS DOUBLE) / (SELECT count({c}) FROM {table}) AS tf
                 FROM {table} WHERE {c} IS NOT NULL GROUP BY {c}""" for c in columns]
    return " UNION ALL ".join(parts) if parts else (
        "SELECT NULL::VARCHAR AS tf_column, NULL::VARCHAR AS value, NULL::DOUBLE AS tf "
        "WHERE false")


def _register_term_frequencies(linker: Any, scratch: duckdb.DuckDBPyConnection, table: str,
                               settings: dict[str, Any], tf: Any) -> None:
    """Give Splink the term frequencies ``tf`` (Arrow ``(tf_column, value, tf)``)
    instead of letting it count them in ``table``: a value it does not list has
    no adjustment (Splink uses the level's u)."""
    types = {r[0]: r[1] for r in scratch.execute(f"DESCRIBE {table}").fetchall()}
    scratch.register("_fl_tf_in", tf)
    for col in tf_columns(settings):
        name = f"_fl_tf_{col}"
        scratch.execute(
            f"""CREATE OR REPLACE TABLE {name} AS SELECT CAST(value AS {types[col]}) AS {col},
                tf AS tf_{col} FROM _fl_tf_in WHERE tf_column = '{col}'""")
        linker.table_management.register_term_frequency_lookup(
            linker._db_api.register(name), col)
    scratch.unregister("_fl_tf_in")


def predict_pairs(
    con: duckdb.DuckDBPyConnection,
    table: str,
    settings: dict[str, Any],
    out_table: str,
    min_probability: float = 0.01,
    learn: bool = False,
    seed: int = 1,
    waterfall: bool = False,
    term_frequencies: str | None = None,
    new_only: str | None = None,
    near_only: bool = False,
) -> ModelUsed:
    """Score the blocked pairs of ``table`` into the temp table ``out_table`` of
    ``con``, with the guard columns; Splink runs in a scratch database. With
    ``learn``, the parameters are first learnt from ``table`` (``learn_model``)
    when it holds at least ``MIN_TRAIN_RECORDS`` records; the parameters used
    and how they were got are returned. With ``waterfall``, each comparison's match
    weight is kept too (``mw_*``, ``mw_tf_adj_*``: ``matchers.waterfall``).
    ``term_frequencies`` names a table of ``con`` (``term_frequencies_sql``) that
    Splink uses instead of counting them itself (DuckDB backend); ``new_only``
    names a boolean column: only pairs with it true on one side are scored
    (``near_only``: ``table`` holds only the rows near those, ``near_new_records``)."""
    n = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    used = ModelUsed(settings, False, "committed model (training not asked for)", n)
    tf = (con.sql(f"SELECT * FROM {term_frequencies}").to_arrow_table()
          if term_frequencies else None)
    with splink_session(con, table) as scratch:
        if learn and n < MIN_TRAIN_RECORDS:
            used.note = (f"committed model: {n} records are too few to train on "
                         f"(needs {MIN_TRAIN_RECORDS})")
        elif learn:
            with captured_splink_messages() as msgs:
                try:
                    used = ModelUsed(learn_model(scratch, table, settings, seed), True,
                                     f"learnt from these {n} records (u by random sampling, "
                                     "m by EM from the committed model)", n)
                except Exception as exc:  # noqa: BLE001 - training is optional
                    used.note = (f"committed model: training failed "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            used.messages = list(msgs)
        scoring = deepcopy(used.settings)
        if new_only:
            scoring = new_pairs_only(scoring, new_only, pushdown=not near_only)
        scoring["retain_intermediate_calculation_columns"] = waterfall
        if linkage_backend() == "spark":  # the pairs scored on Spark, the rest here
            df = spark_predict(scratch, table, scoring, min_probability)
        else:
            linker = make_linker(scratch, table, scoring)
            if tf is not None:
                _register_term_frequencies(linker, scratch, table, scoring, tf)
            df = linker.inference.predict(threshold_match_probability=min_probability)
        pairs = scratch.sql(
            f"SELECT *, {twin_guard_sql()} AS twin_guard, "
            f"{generation_guard_sql()} AS generation_guard, "
            f"{household_guard_sql()} AS household_guard FROM {df.physical_name}"
        ).to_arrow_table()
    con.register("_fl_pairs_in", pairs)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out_table} AS SELECT * FROM _fl_pairs_in")
    con.unregister("_fl_pairs_in")
    return used
