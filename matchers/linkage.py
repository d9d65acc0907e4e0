"""The monthly person and household linkage over the warehouse's staging views.

Order: standardise the distinct appearances of every person record; collapse
identical ones into profiles; link profiles deterministically on strong and
source identifiers; score candidate pairs with the Splink model learnt from
this run's profiles (u by random sampling, m by EM, from the committed model;
the committed model as it is when there are too few profiles to train on; the
prior scaled to this run's size), the parameters kept in
``linkage.model_parameters``; cluster
strongest first under constraints (different identifiers, case-system people,
twins, a generation apart, and records that fit two people go to neither);
join a child known by another surname to the only pupil of its forename and
DOB (``pupils``); give DWP rows that carry nothing checkable to the person sent when DWP's
measured accuracy allows; write ``linkage.*`` tables with, for each record, how
it was linked and with what probability (the evidence a claim needs), a
clerical-review list of the pairs the rules stopped, and ``linkage.doubtful_links``:
the records of a person linked to no cohort member that scored at or above the
review floor against one (a claim they would contradict is held for review,
``famlink.claims.review``); for those pairs and the probabilistic links of
cohort members' records, ``linkage.link_waterfall`` keeps Splink's waterfall
(each comparison's level and match weight, ``matchers.waterfall``). A
reviewer's "same" decision (``review.decisions``) is applied here at every later
run: the records are merged with the member whatever the guards say.

Guards on a scored pair (``linkage.person_pairs``), each a reason a pair is
never linked automatically whatever its score:

- twin guard: same DOB, forenames that cannot be one person's;
- generation guard: DOBs ten or more years apart and not a typing slip;
- household guard: only surname and address agree (no forename, DOB or
  identifier), which every member of a household shares.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from matchers.clustering import Edge, Node, cluster, components
from matchers.comparisons import (
    BLOCKING_COLUMNS,
    blocking_columns_sql,
    with_first_name_seen_sql,
)
from matchers.deterministic import deterministic_edges
from matchers.dwp import METHOD as DWP_METHOD
from matchers.dwp import VOUCHED_METHOD as DWP_VOUCHED_METHOD
from matchers.dwp import unverified_dwp_links
from matchers.households import link_households
from matchers.incremental import (
    code_fingerprint,
    keep_unchanged_pairs,
    mark_new_profiles,
    model_file_hash,
    model_hash,
    previous_run,
    record_run,
    relink_reason,
    touched_profiles,
    write_cluster_state,
    write_profile_inputs,
)
from matchers.probabilistic import (
    DEFAULT_MODEL_PATH,
    DEFAULT_PRIOR_RECALL,
    MIN_TF_RECORDS,
    SPLINK_COLUMNS,
    ModelUsed,
    estimate_prior,
    load_model,
    near_new_records,
    parameter_rows,
    predict_pairs,
    term_frequencies_sql,
    tf_columns,
)
from matchers.pupils import METHOD as PUPIL_METHOD
from matchers.pupils import sole_pupil_links
from matchers.records import EXTRACTS, build_person_records, build_profiles, has_table
from matchers.waterfall import write_link_waterfall

REVIEW_SETTINGS_PATH = Path(__file__).parent / "data" / "review.yaml"
# A reviewer decided the two records are one person (``famlink review decide --same``).
REVIEW_METHOD = "review_same"


class ReviewSettings(BaseModel):
    """``matchers/data/review.yaml``: where clerical review and doubt begin."""

    model_config = ConfigDict(extra="forbid")
    review_floor: float = Field(ge=0.0, le=1.0)


def load_review_settings(path: Path = REVIEW_SETTINGS_PATH) -> ReviewSettings:
    """Load and validate the review settings (an error names the file)."""
    try:
        return ReviewSettings.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"{path}: invalid review settings: {first}") from None


LINK_THRESHOLD = 0.9
REVIEW_LOW = load_review_settings().review_floor


@dataclass
class LinkageSummary:
    records: int = 0
    profiles: int = 0
    persons: int = 0
    deterministic_edges: int = 0
    probabilistic_edges: int = 0
    refused_edges: int = 0
    clerical_review: int = 0
    doubtful_links: int = 0
    reviewed_same_edges: int = 0
    household_links: int = 0
    dwp_unverified_edges: int = 0
    sole_pupil_edges: int = 0
    waterfall_pairs: int = 0
    dwp_accuracy: float | None = None
    prior: float | None = None
    model_note: str = ""
    model_learnt: bool = False
    mode: str = "full"            # or "incremental": only new and changed profiles scored
    mode_reason: str = ""
    profiles_scored: int = 0      # profiles in the model's input
    extracts_read: list[str] = field(default_factory=list)   # staging views read this run
    profiles_given: int = 0       # of them, the rows Splink scored from (incremental: near the new)
    new_profiles: int = 0
    vanished_profiles: int = 0
    pairs_scored: int = 0
    profiles_clustered: int = 0   # profiles of the edge graph's components clustered this run
    stage_seconds: dict[str, float] = field(default_factory=dict)


def _profiles(con: duckdb.DuckDBPyConnection) -> int:
    """One row per distinct appearance of a source person (see ``build_profiles``)."""
    return build_profiles(con)


def _name_groups(con: duckdb.DuckDBPyConnection) -> dict[str, frozenset[str]]:
    return {n: frozenset(g) for n, g in con.execute("SELECT * FROM fl_name_groups").fetchall()}


def link_warehouse(
    con: duckdb.DuckDBPyConnection,
    model_path: Path | None = None,
    progress: Callable[[str], None] | None = None,
    threshold: float = LINK_THRESHOLD,
    learn: bool = True,
    relink_all: bool = False,
    rescore_all: bool = False,
) -> LinkageSummary:
    """Link people and households from ``staging.*`` into ``linkage.*`` tables: only
    what is new since the previous run, or everything (``relink_all``, or a reason
    of ``matchers.incremental.relink_reason``). ``rescore_all`` scores every pair
    with the kept model and term frequencies, as an incremental run with every
    profile new (what an incremental run must equal)."""
    say = progress or (lambda _msg: None)
    s = LinkageSummary()
    t0 = started = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal t0
        s.stage_seconds[name] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        say(f"linkage: {name} done in {s.stage_seconds[name]}s")

    floor = min(REVIEW_LOW, threshold)
    prev = previous_run(con)
    fingerprint = code_fingerprint(learn, floor)
    model_file = model_file_hash(model_path)
    same_code = prev is not None and prev.code_fingerprint == fingerprint
    s.records = build_person_records(con, reuse=same_code)
    s.extracts_read = [r[0] for r in con.execute(
        "SELECT extract FROM _fl_extracts_read ORDER BY extract").fetchall()]
    s.profiles = _profiles(con)
    stage("standardise")

    s.deterministic_edges = deterministic_edges(con, "_fl_profiles", "_fl_det_edges")
    stage("deterministic")

    cols = ", ".join(c for c in SPLINK_COLUMNS if c != "unique_id")
    # the whole row Splink sees, blocking columns included, and whether its forename
    # is seen once in the input (the guards' rare-typo test reads only that): a
    # profile whose row or rarity changed is scored again. DuckDB's hash of the row
    # (63 of its bits, a BIGINT every backend takes; the DuckDB version is in the
    # code fingerprint) is several times cheaper than an md5 of its text
    # (``first_name_seen`` is counted here, over every profile, once: Splink may be
    # given only some of them). One statement: the county's wide rows are written once.
    # (the row without its forename's count: only whether it is 1 counts)
    row = ", ".join(f'"{c}"' for c in [*SPLINK_COLUMNS, *BLOCKING_COLUMNS])
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _fl_splink_input AS
        WITH p AS MATERIALIZED (
            SELECT CAST(profile_id AS VARCHAR) AS unique_id, {cols} FROM _fl_profiles
            WHERE last_name IS NOT NULL OR (first_name IS NOT NULL AND dob IS NOT NULL)
        ), b AS MATERIALIZED ({blocking_columns_sql("p")})
        SELECT *, CAST(hash({row}, first_name_seen = 1) >> 1 AS BIGINT) AS input_hash
        FROM ({with_first_name_seen_sql("b")})""")
    n_input = con.execute("SELECT count(*) FROM _fl_splink_input").fetchall()[0][0]
    reason = relink_reason(prev, relink_all=relink_all, fingerprint=fingerprint,
                           model_file=model_file, profiles=n_input, learn=learn)
    if rescore_all and reason is not None and prev is not None and prev.model is not None \
            and not relink_all:
        reason = None   # the kept model serves whatever else changed: asked for
    s.mode = "full" if reason else ("rescore" if rescore_all else "incremental")
    s.profiles_scored = n_input
    at_training = n_input
    if reason is None:
        assert prev is not None and prev.model is not None
        s.new_profiles, s.vanished_profiles = mark_new_profiles(con, "_fl_splink_input",
                                                                all_new=rescore_all)
        kept = keep_unchanged_pairs(con, "_fl_splink_input")
        unread = sorted(set(EXTRACTS) - set(s.extracts_read))
        s.mode_reason = (f"{s.new_profiles} new or changed profiles, {s.vanished_profiles} "
                         f"gone; {kept} scored pairs kept; records not read again (no "
                         f"delivery since): {', '.join(unread) or 'none'}")
        at_training = prev.profiles_at_training
        scored_with: dict | None = prev.model
        s.model_learnt = prev.model_learnt
        s.prior = prev.model.get("probability_two_random_records_match")
        s.model_note = str(con.execute("SELECT any_value(how) FROM linkage.model_parameters"
                                       ).fetchall()[0][0]) + " (kept from the last full re-link)"
        if s.new_profiles:
            given = _near_new_input(con, prev.model)
            s.profiles_given = con.execute(f"SELECT count(*) FROM {given}").fetchall()[0][0]
            s.mode_reason += f"; {s.profiles_given} profiles near them given to Splink"
            predict_pairs(con, given, prev.model, "_fl_pred",
                          min_probability=0.01, waterfall=True,
                          term_frequencies="linkage.term_frequencies", new_only="is_new",
                          near_only=given == "_fl_splink_near")
            _insert_pairs(con, floor)
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE _fl_pred AS "
                        "SELECT * FROM linkage.person_pairs WHERE false")
    else:
        s.mode_reason = reason
        s.new_profiles = n_input
        con.execute(
            "CREATE OR REPLACE TABLE linkage.person_pairs (profile_l BIGINT, profile_r BIGINT, "
            "match_weight DOUBLE, match_probability DOUBLE, twin_guard BOOLEAN, "
            "generation_guard BOOLEAN, household_guard BOOLEAN)"
        )
        con.execute("CREATE OR REPLACE TABLE linkage.pair_weights (profile_l BIGINT, "
                    "profile_r BIGINT, weights STRUCT(none INTEGER))")
        scored_with = None
        s.model_learnt = False
        if n_input > 1:
            settings, meta = load_model(model_path, link_type="dedupe_only",
                                        term_frequencies=n_input >= MIN_TF_RECORDS)
            s.prior = settings["probability_two_random_records_match"] = estimate_prior(
                con, "_fl_splink_input", meta.get("prior_rule_recall", DEFAULT_PRIOR_RECALL)
            )
            con.execute("CREATE OR REPLACE TABLE linkage.term_frequencies AS "
                        + term_frequencies_sql("_fl_splink_input", tf_columns(settings)))
            used = predict_pairs(con, "_fl_splink_input", settings, "_fl_pred",
                                 min_probability=0.01, learn=learn, waterfall=True,
                                 term_frequencies="linkage.term_frequencies")
            s.model_note = used.note
            s.model_learnt = used.trained
            scored_with = used.settings
            write_model_parameters(con, used, model_path)
            _insert_pairs(con, floor)
        else:
            con.execute("CREATE OR REPLACE TABLE linkage.term_frequencies AS "
                        + term_frequencies_sql("_fl_splink_input", []))
            con.execute("CREATE OR REPLACE TEMP TABLE _fl_pred AS "
                        "SELECT * FROM linkage.person_pairs WHERE false")
            _drop_model_parameters(con)
    say(f"linkage: {s.mode} ({s.mode_reason}); model {s.model_note}")
    s.pairs_scored = con.execute("SELECT count(*) FROM _fl_pred").fetchall()[0][0]
    write_profile_inputs(con, "_fl_splink_input")
    stage("probabilistic")

    # Only profiles with an edge reach Python; every other profile is its own person.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _fl_edges AS
        SELECT profile_l, profile_r, 1.0 AS p, method FROM _fl_det_edges
        UNION ALL
        SELECT profile_l, profile_r, match_probability, 'probabilistic'
        FROM linkage.person_pairs
        WHERE match_probability >= ? AND NOT (twin_guard OR generation_guard OR household_guard)
        """,
        [threshold],
    )
    s.reviewed_same_edges = _add_reviewed_edges(con)
    # An incremental run clusters again only the components of the edge graph that
    # changed; a full or rescoring run clusters every component.
    touched = touched_profiles(con, "_fl_edges", "_fl_touched") if s.mode == "incremental" \
        else None
    s.profiles_clustered = _cluster_components(con, touched is not None)
    write_cluster_state(con, "_fl_edges", "_fl_new_nodes", "_fl_new_outcome",
                        "_fl_touched" if touched is not None else None)
    stage("cluster")

    con.execute("CREATE OR REPLACE TEMP TABLE _fl_roots AS "
                "SELECT profile_id, root FROM linkage.cluster_nodes")
    con.execute("""CREATE OR REPLACE TEMP TABLE _fl_refused AS
        SELECT profile_l, profile_r, p, method FROM linkage.cluster_outcome WHERE NOT accepted""")
    s.sole_pupil_edges = sole_pupil_links(con, "_fl_roots", "_fl_refused", "_fl_pupil_edges")
    s.dwp_unverified_edges, s.dwp_accuracy = unverified_dwp_links(
        con, "_fl_roots", threshold, "_fl_dwp_edges")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _fl_accepted AS
        SELECT profile_l AS a, profile_r AS b, p, method FROM linkage.cluster_outcome
        WHERE accepted
        UNION ALL SELECT a, b, p, method FROM _fl_pupil_edges
        UNION ALL SELECT a, b, p, method FROM _fl_dwp_edges""")
    (s.probabilistic_edges, s.refused_edges), = con.execute(
        "SELECT (SELECT count(*) FROM _fl_accepted WHERE method = 'probabilistic'), "
        "(SELECT count(*) FROM _fl_refused)").fetchall()
    _write_record_links(con, "_fl_roots", "_fl_accepted", incremental=s.mode == "incremental")
    s.persons = con.execute("SELECT count(DISTINCT person_id) FROM linkage.record_links"
                            ).fetchall()[0][0]
    stage("record links")

    _review_candidates(con, "_fl_refused", threshold)
    s.clerical_review = _write_clerical_review(con)
    s.doubtful_links = _write_doubtful_links(con)
    s.waterfall_pairs = write_link_waterfall(con, scored_with, _weights_view(con, scored_with))
    stage("review")

    s.household_links = link_households(con)
    stage("households")
    record_run(con, {
        "mode": s.mode, "reason": s.mode_reason,
        "model_hash": model_hash(scored_with) if scored_with else None,
        "model_file_hash": model_file, "code_fingerprint": fingerprint,
        "profiles": n_input, "profiles_at_training": at_training,
        "new_profiles": s.new_profiles, "vanished_profiles": s.vanished_profiles,
        "pairs_scored": s.pairs_scored,
        "pairs_kept": con.execute("SELECT count(*) FROM linkage.person_pairs").fetchall()[0][0],
        "model_learnt": s.model_learnt,
        "seconds": round(time.perf_counter() - started, 3)})
    return s


def _near_new_input(con: duckdb.DuckDBPyConnection, model: dict) -> str:
    """The Splink input an incremental run scores: the new and changed profiles and
    the rows the blocking rules could pair them with (``near_new_records``; their
    ``first_name_seen`` was counted over every profile); the whole input when the
    rules cannot be read so."""
    if near_new_records(con, "_fl_splink_input", model, "_fl_near") is None:
        return "_fl_splink_input"
    con.execute("""CREATE OR REPLACE TEMP TABLE _fl_splink_near AS
        SELECT * FROM _fl_splink_input SEMI JOIN _fl_near USING (unique_id)""")
    con.execute("DROP TABLE _fl_near")
    return "_fl_splink_near"


def _cluster_components(con: duckdb.DuckDBPyConnection, only_touched: bool) -> int:
    """Cluster the edge graph ``_fl_edges`` (only the profiles of ``_fl_touched`` and
    their edges with ``only_touched``) into ``_fl_new_nodes`` (profile_id, component,
    root) and ``_fl_new_outcome`` (profile_l, profile_r, p, method, accepted: each
    edge taken or refused); returns the number of profiles clustered."""
    where = ("WHERE profile_l IN (SELECT profile_id FROM _fl_touched)" if only_touched
             else "")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _fl_cluster_edges AS "
                f"SELECT profile_l, profile_r, p, method FROM _fl_edges {where}")
    nodes = [
        Node(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], tuple(r[8] or ()))
        for r in con.execute(
            """SELECT profile_id, upn, nhs_number, ni_number, cohort_ref, dob_str, first_name,
                      last_name, other_names
               FROM _fl_profiles WHERE profile_id IN (
                   SELECT profile_l FROM _fl_cluster_edges
                   UNION SELECT profile_r FROM _fl_cluster_edges)"""
        ).fetchall()
    ]
    edges = [Edge(int(a), int(b), float(p), m) for a, b, p, m in con.execute(
        "SELECT profile_l, profile_r, p, method FROM _fl_cluster_edges").fetchall()]
    con.execute("DROP TABLE _fl_cluster_edges")
    roots, accepted, refused = cluster(nodes, edges, _name_groups(con))
    component = components((e.a, e.b) for e in edges)
    con.register("_fl_nodes_df", pd.DataFrame(
        {"profile_id": list(roots), "component": [component[x] for x in roots],
         "root": list(roots.values())}, dtype="int64"))
    con.register("_fl_outcome_df", pd.DataFrame(
        [(e.a, e.b, e.probability, e.method, True) for e in accepted]
        + [(e.a, e.b, e.probability, e.method, False) for e in refused],
        columns=["profile_l", "profile_r", "p", "method", "accepted"]).astype(
        {"profile_l": "int64", "profile_r": "int64", "p": "float64", "method": "object",
         "accepted": "bool"}))
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _fl_new_nodes AS SELECT * FROM _fl_nodes_df")
        con.execute("CREATE OR REPLACE TEMP TABLE _fl_new_outcome AS "
                    "SELECT * FROM _fl_outcome_df")
    finally:
        con.unregister("_fl_nodes_df")
        con.unregister("_fl_outcome_df")
    return len(nodes)


def _insert_pairs(con: duckdb.DuckDBPyConnection, floor: float) -> None:
    """Add the pairs just scored (``_fl_pred``) to ``linkage.person_pairs``, and the
    per-comparison weights of those at or above ``floor`` (only they can be a link or
    a doubtful pair, whose waterfall is kept) to ``linkage.pair_weights``."""
    con.execute(
        """INSERT INTO linkage.person_pairs
           SELECT least(CAST(unique_id_l AS BIGINT), CAST(unique_id_r AS BIGINT)),
           greatest(CAST(unique_id_l AS BIGINT), CAST(unique_id_r AS BIGINT)),
           match_weight, match_probability,
           coalesce(twin_guard, false), coalesce(generation_guard, false),
           coalesce(household_guard, false) FROM _fl_pred"""
    )
    weights = [r[0] for r in con.execute("DESCRIBE _fl_pred").fetchall()
               if r[0].startswith(("gamma_", "mw_"))]
    if not weights:
        return
    packed = "struct_pack(" + ", ".join(f'"{c}" := "{c}"' for c in weights) + ")"
    select = ("SELECT least(CAST(unique_id_l AS BIGINT), CAST(unique_id_r AS BIGINT)) "
              "AS profile_l, greatest(CAST(unique_id_l AS BIGINT), CAST(unique_id_r AS BIGINT)) "
              f"AS profile_r, {packed} AS weights FROM _fl_pred "
              f"WHERE match_probability >= {floor!r}")
    if con.execute("SELECT count(*) FROM linkage.pair_weights").fetchall()[0][0]:
        con.execute(f"INSERT INTO linkage.pair_weights {select}")
    else:
        con.execute(f"CREATE OR REPLACE TABLE linkage.pair_weights AS {select}")


def _weights_view(con: duckdb.DuckDBPyConnection, scored_with: dict | None) -> str:
    """The kept weights as Splink's predict output names them, with both profiles'
    input columns (``x_l``, ``x_r``: a level's label may depend on them), for
    ``write_link_waterfall``."""
    if scored_with is None:
        return "_fl_pred"
    sides = ", ".join(f"{side}.{c} AS {c}_{side}" for side in ("l", "r")
                      for c in SPLINK_COLUMNS if c != "unique_id")
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW _fl_weights AS
        SELECT CAST(w.profile_l AS VARCHAR) AS unique_id_l, CAST(w.profile_r AS VARCHAR)
               AS unique_id_r, unnest(w.weights), {sides}
        FROM linkage.pair_weights AS w
        JOIN _fl_splink_input AS l ON l.unique_id = CAST(w.profile_l AS VARCHAR)
        JOIN _fl_splink_input AS r ON r.unique_id = CAST(w.profile_r AS VARCHAR)""")
    return "_fl_weights"


def _drop_model_parameters(con: duckdb.DuckDBPyConnection) -> None:
    """Nothing was scored: no model was used."""
    con.execute("DROP TABLE IF EXISTS linkage.model_parameters")


def write_model_parameters(
    con: duckdb.DuckDBPyConnection, used: ModelUsed, model_path: Path | None
) -> int:
    """``linkage.model_parameters``: the m, u and match weight of every comparison
    level this run scored with, whether they were learnt from its data, and the
    whole Splink model as JSON (for Splink's charts in the linkage report)."""
    rows = pd.DataFrame(parameter_rows(used.settings))
    rows["learnt"] = used.trained
    rows["how"] = used.note
    rows["prior"] = used.settings.get("probability_two_random_records_match")
    rows["model_file"] = str(model_path or DEFAULT_MODEL_PATH)
    rows["model_json"] = json.dumps(used.settings)
    rows["model_hash"] = model_hash(used.settings)
    con.register("_fl_params", rows.astype({"tf_column": "object"}))
    con.execute("CREATE OR REPLACE TABLE linkage.model_parameters AS SELECT * FROM _fl_params")
    con.unregister("_fl_params")
    return len(rows)


# The edge that best explains a profile's membership: identifiers before
# probability, the strongest first (then the lower profiles: the order edges are clustered in).
VIA_RANK = {"upn": 0, "nhs_number": 1, "ni_number": 2, "dwp_match_ref": 3, "source_ref": 4,
            REVIEW_METHOD: 5, PUPIL_METHOD: 7, DWP_VOUCHED_METHOD: 8, DWP_METHOD: 8}


def _write_record_links(con: duckdb.DuckDBPyConnection, roots: str, accepted: str,
                        incremental: bool = False) -> None:
    """``linkage.record_links``: each record's person (``roots``: profile_id, root; a
    profile absent is its own person) and the accepted edge (``accepted``: a, b, p,
    method) that best explains its profile's membership.

    A record's row is a function of its profile's row in ``linkage.profile_links``
    (its cluster's root, its own and its explaining edge's records) and of its
    cluster's other rows there. An ``incremental`` run (after ``build_person_records``
    with reuse, which leaves the records added, gone or retyped in
    ``_fl_moved_records``) computes and writes only the rows of the clusters with a
    profile row added, gone or changed, or a record moved: every other row would
    come out as it is."""
    rank = "CASE method " + " ".join(f"WHEN '{m}' THEN {r}" for m, r in VIA_RANK.items()) \
        + " ELSE 9 END"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fl_via AS
        SELECT me AS profile_id, other AS via_profile, method AS via_method,
               p AS via_probability
        FROM (SELECT a AS me, b AS other, a, b, p, method FROM {accepted}
              UNION ALL SELECT b, a, a, b, p, method FROM {accepted})
        QUALIFY row_number() OVER (PARTITION BY me ORDER BY {rank}, p DESC, a, b) = 1""")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fl_profile_links AS
        SELECT p.profile_id, coalesce(cl.root, p.profile_id) AS root, p.rep_record_id,
               p.cohort_ref, v.via_method, v.via_probability,
               vp.rep_record_id AS via_record_id
        FROM _fl_profiles p LEFT JOIN {roots} cl USING (profile_id)
        LEFT JOIN _fl_via v USING (profile_id)
        LEFT JOIN _fl_profiles vp ON vp.profile_id = v.via_profile""")
    con.execute("DROP TABLE _fl_via")
    incremental = incremental and has_table(con, "linkage", "profile_links") \
        and has_table(con, "linkage", "record_links") and bool(con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE temporary "
            "AND table_name = '_fl_moved_records'").fetchall()[0][0])
    scope = ""
    if incremental:
        con.execute("""CREATE OR REPLACE TEMP TABLE _fl_links_changed AS
            (SELECT * FROM _fl_profile_links EXCEPT SELECT * FROM linkage.profile_links)
            UNION ALL
            (SELECT * FROM linkage.profile_links EXCEPT SELECT * FROM _fl_profile_links)""")
        con.execute("""CREATE OR REPLACE TEMP TABLE _fl_dirty_roots AS
            SELECT root FROM _fl_links_changed
            UNION SELECT pl.root FROM _fl_moved_records
                  JOIN _fl_record_profile USING (record_id)
                  JOIN _fl_profile_links AS pl USING (profile_id)""")
        scope = "SEMI JOIN _fl_dirty_roots USING (root)"
    rows = f"""WITH c AS (
            SELECT pl.*, max(pl.cohort_ref) OVER (PARTITION BY pl.root) AS cluster_ref,
                   min(pl.rep_record_id) OVER (PARTITION BY pl.root) AS cluster_min
            FROM _fl_profile_links AS pl {scope}
        )
        SELECT r.extract, r.record_key, r.record_id,
            CASE WHEN c.cluster_ref IS NOT NULL THEN 'P-' || c.cluster_ref
                 ELSE 'X-' || substr(md5(c.cluster_min), 1, 16) END AS person_id,
            c.cluster_ref AS person_ref,
            CASE WHEN r.extract = 'cohort_members' THEN 'cohort'
                 WHEN r.record_id <> c.rep_record_id THEN 'source_ref'
                 ELSE c.via_method END AS match_method,
            CASE WHEN r.extract = 'cohort_members' THEN 1.0
                 WHEN r.record_id <> c.rep_record_id THEN 1.0
                 ELSE c.via_probability END AS match_probability,
            CASE WHEN r.extract = 'cohort_members' THEN NULL
                 WHEN r.record_id <> c.rep_record_id THEN c.rep_record_id
                 ELSE c.via_record_id END AS matched_to_record_id
        FROM linkage.record_appearance r
        JOIN _fl_record_profile rp USING (record_id)
        JOIN c ON c.profile_id = rp.profile_id"""
    if not incremental:
        con.execute(f"CREATE OR REPLACE TABLE linkage.record_links AS {rows}")
        con.execute("CREATE OR REPLACE TABLE linkage.profile_links AS "
                    "SELECT * FROM _fl_profile_links")
        con.execute("DROP TABLE _fl_profile_links")
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE _fl_links_new AS {rows}")
    con.execute("""DELETE FROM linkage.record_links WHERE record_id IN (
                   SELECT record_id FROM _fl_links_new UNION
                   SELECT record_id FROM _fl_moved_records)""")
    con.execute("INSERT INTO linkage.record_links SELECT * FROM _fl_links_new")
    con.execute("""DELETE FROM linkage.profile_links WHERE profile_id IN (
                   SELECT profile_id FROM _fl_links_changed)""")
    con.execute("""INSERT INTO linkage.profile_links SELECT * FROM _fl_profile_links
                   SEMI JOIN (SELECT DISTINCT profile_id FROM _fl_links_changed)
                   USING (profile_id)""")
    for t in ("_fl_links_new", "_fl_links_changed", "_fl_dirty_roots", "_fl_profile_links"):
        con.execute(f"DROP TABLE {t}")


def _latest_decisions_sql(con: duckdb.DuckDBPyConnection) -> str | None:
    """The latest reviewer decision per pair, or None when none was ever recorded."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'review' "
        "AND table_name = 'decisions' AND database_name = current_database()").fetchall()[0][0]
    if not found:
        return None
    return """SELECT * FROM review.decisions
              QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY decision_id DESC) = 1"""


# The other side of a doubtful pair, named the same way at every run: the source
# person (system and id), or the record itself when the source gave no id.
OTHER_SOURCE_SQL = "{p}.source_system || ':' || coalesce({p}.source_person_id, {p}.rep_record_id)"


def _add_reviewed_edges(con: duckdb.DuckDBPyConnection) -> int:
    """Edges for the pairs a reviewer decided are one person: the member's cohort
    profile to every profile of the other side's source person. They are not
    probabilistic, so no guard or cluster constraint refuses them."""
    decisions = _latest_decisions_sql(con)
    if decisions is None:
        return 0
    other = OTHER_SOURCE_SQL.format(p="o")
    con.execute(
        f"""INSERT INTO _fl_edges
        SELECT DISTINCT least(m.profile_id, o.profile_id), greatest(m.profile_id, o.profile_id),
               1.0, '{REVIEW_METHOD}'
        FROM ({decisions}) AS d
        JOIN _fl_profiles AS m ON m.cohort_ref = d.person_ref
        JOIN _fl_profiles AS o ON {other} = d.other_source
        WHERE d.decision = 'same' AND m.profile_id <> o.profile_id"""
    )
    return con.execute(
        f"SELECT count(*) FROM _fl_edges WHERE method = '{REVIEW_METHOD}'").fetchall()[0][0]


def _review_candidates(con: duckdb.DuckDBPyConnection, refused: str, threshold: float) -> None:
    """``_fl_review_cand``: scored pairs at or above the review floor the linkage did
    not merge, each with the reason (one definition for the clerical review and
    the doubtful links); ``refused`` (profile_l, profile_r, method) are the
    clustering's refused edges."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _fl_refused_pairs AS
        SELECT DISTINCT ON (lo, hi) lo AS profile_l, hi AS profile_r, method
        FROM (SELECT least(profile_l, profile_r) AS lo, greatest(profile_l, profile_r) AS hi,
                     method FROM {refused})
        ORDER BY lo, hi, method = 'ambiguous'""")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fl_review_cand AS
        SELECT pp.*, CASE
            WHEN f.method = 'ambiguous' THEN 'ambiguous: fits two people about as well'
            WHEN f.profile_l IS NOT NULL THEN 'refused: conflicts with its cluster'
            WHEN pp.twin_guard AND pp.match_probability >= {threshold}
                THEN 'twin guard: same DOB, different forename'
            WHEN pp.generation_guard AND pp.match_probability >= {threshold}
                THEN 'generation guard: DOBs a generation apart'
            WHEN pp.household_guard AND pp.match_probability >= {threshold}
                THEN 'household guard: only surname and address agree'
            ELSE 'below threshold' END AS reason
        FROM linkage.person_pairs pp
        LEFT JOIN _fl_refused_pairs f USING (profile_l, profile_r)
        WHERE f.profile_l IS NOT NULL
           OR ((pp.twin_guard OR pp.generation_guard OR pp.household_guard)
               AND pp.match_probability >= {threshold})
           OR (pp.match_probability >= {REVIEW_LOW} AND pp.match_probability < {threshold})"""
    )
    con.execute("DROP TABLE _fl_refused_pairs")


def _write_clerical_review(con: duckdb.DuckDBPyConnection) -> int:
    """Borderline pairs an analyst should look at: just under the threshold,
    stopped by a guard, or refused by a cluster constraint."""
    con.execute(
        """CREATE OR REPLACE TABLE linkage.clerical_review AS
        SELECT a.rep_record_id AS record_id_l, b.rep_record_id AS record_id_r,
               cand.match_probability, cand.match_weight, cand.reason,
               a.first_name AS first_name_l, b.first_name AS first_name_r,
               a.last_name AS last_name_l, b.last_name AS last_name_r,
               a.dob AS dob_l, b.dob AS dob_r, a.postcode AS postcode_l, b.postcode AS postcode_r,
               la.person_id AS person_id_l, lb.person_id AS person_id_r
        FROM _fl_review_cand AS cand JOIN _fl_profiles a ON a.profile_id = cand.profile_l
        JOIN _fl_profiles b ON b.profile_id = cand.profile_r
        LEFT JOIN linkage.record_links la ON la.record_id = a.rep_record_id
        LEFT JOIN linkage.record_links lb ON lb.record_id = b.rep_record_id
        WHERE la.person_id IS DISTINCT FROM lb.person_id
        ORDER BY cand.match_probability DESC"""
    )
    return con.execute("SELECT count(*) FROM linkage.clerical_review").fetchall()[0][0]


def _write_doubtful_links(con: duckdb.DuckDBPyConnection) -> int:
    """``linkage.doubtful_links``: for each review candidate with a cohort member on
    one side and a person linked to no cohort member on the other, every record
    of that other person (they would all move with it). ``pair_id`` is a hash of
    the member's person_ref and the other side's source person, so it names the
    same pair at every run and a reviewer's decision keeps applying. A pair a
    reviewer decided are different people keeps its row, with the decision."""
    decisions = _latest_decisions_sql(con)
    decided = (f"LEFT JOIN ({decisions}) AS d USING (pair_id)" if decisions else
               "LEFT JOIN (SELECT NULL::VARCHAR AS pair_id, NULL::VARCHAR AS decision) AS d "
               "USING (pair_id)")
    other = OTHER_SOURCE_SQL.format(p="po")
    con.execute(
        f"""CREATE OR REPLACE TABLE linkage.doubtful_links AS
        WITH ends AS (
            SELECT profile_l AS m, profile_r AS o, match_probability, reason FROM _fl_review_cand
            UNION ALL
            SELECT profile_r, profile_l, match_probability, reason FROM _fl_review_cand
        ), prof AS (
            SELECT p.*, rl.person_id, rl.person_ref
            FROM _fl_profiles AS p JOIN linkage.record_links AS rl
              ON rl.record_id = p.rep_record_id
        ), pairs AS (
            SELECT pm.person_ref, po.person_id AS other_person_id, {other} AS other_source,
                   max(e.match_probability) AS match_probability,
                   arg_max(e.reason, e.match_probability) AS reason
            FROM ends AS e JOIN prof AS pm ON pm.profile_id = e.m
            JOIN prof AS po ON po.profile_id = e.o
            WHERE pm.person_ref IS NOT NULL AND po.person_ref IS NULL
            GROUP BY ALL
        ), pair_ids AS (
            SELECT 'DL-' || substr(md5(person_ref || '|' || other_source), 1, 12) AS pair_id, *
            FROM pairs
        ), members AS (
            SELECT record_key AS person_ref, any_value(family_id) AS family_id
            FROM linkage.person_records WHERE extract = 'cohort_members' GROUP BY ALL
        )
        SELECT pi.pair_id, pi.person_ref, m.family_id, rl.extract, rl.record_key, rl.record_id,
               pi.other_source, pi.other_person_id, pi.match_probability, pi.reason,
               d.decision
        FROM pair_ids AS pi
        JOIN linkage.record_links AS rl ON rl.person_id = pi.other_person_id
        LEFT JOIN members AS m ON m.person_ref = pi.person_ref
        {decided}
        ORDER BY pi.pair_id, rl.extract, rl.record_key"""
    )
    return con.execute(
        "SELECT count(DISTINCT pair_id) FROM linkage.doubtful_links").fetchall()[0][0]


def model_used(con: duckdb.DuckDBPyConnection) -> tuple[list[dict], dict | None, str]:
    """For the linkage report: the parameter rows of ``linkage.model_parameters``,
    the Splink model they came from (``model_charts`` / ``model_charts_html``
    draw Splink's own charts of it) and how they were got; empty when the
    warehouse predates the table."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'linkage' "
        "AND table_name = 'model_parameters' AND database_name = current_database()"
    ).fetchall()[0][0]
    if not found:
        return [], None, ""
    df = con.execute("SELECT * FROM linkage.model_parameters ORDER BY rowid").df()
    if df.empty:
        return [], None, ""
    model = json.loads(df["model_json"].iloc[0])
    rows = df.drop(columns=["model_json"]).to_dict("records")
    return rows, model, str(df["how"].iloc[0])
