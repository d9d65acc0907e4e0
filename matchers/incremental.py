"""Link only what is new: what a monthly run keeps for the next one, and when it relinks all.

A run's linkage leaves in the warehouse everything the next run needs to score
only what changed (the build works on a copy of the previous warehouse):

- ``linkage.person_appearances``: standardised appearances, keyed by the hash of
  their raw person columns, so only new appearances are standardised;
- ``linkage.profile_inputs``: each profile's stable id (a hash of its key) and a
  hash of its whole Splink input row (blocking columns included). A profile whose
  row changed (a new record of the same source person adds a postcode; its date
  of birth became a "hot" date) counts as new;
- ``linkage.person_pairs`` and ``linkage.pair_weights``: the scored pairs, and the
  per-comparison weights of those at or above the review floor (the waterfall);
- the model they were scored with: ``linkage.model_parameters.model_json`` (its
  hash in ``model_hash``) and ``linkage.term_frequencies``;
- ``linkage.profiles`` and ``linkage.appearance_profiles``: the profiles, so that
  only those of source persons with a new, gone or changed appearance are built;
- ``linkage.cluster_edges``, ``linkage.cluster_nodes`` and ``linkage.cluster_outcome``:
  the edge graph clustered, each profile's component and cluster, each edge's fate;
- ``linkage.record_appearance`` and ``linkage.profile_links``: each record's
  appearance, and each profile's part in its record links;
- ``linkage.runs``: one row per run, how it linked and why.

An incremental run scores, with that same model and those same term
frequencies, only the pairs with a new or changed profile on one side; a pair of
two unchanged profiles keeps its score, a pair with a vanished profile is
dropped. The merged pairs are then exactly the pairs a full scoring of every
profile with that model would give (the blocking rules and comparisons see only
the two rows, and both are unchanged). The clustering of a component of the edge
graph sees only its own profiles and edges, so only the components with an edge
added, dropped or changed are clustered again (``touched_profiles``); every other
keeps its clusters, and so its person ids. Sole-pupil and DWP links, review
lists, doubtful links and waterfalls are then set-based SQL over everything;
record links are written only for the clusters whose rows in
``linkage.profile_links`` changed (``matchers.linkage._write_record_links``). All
come out as a full re-link with the same model would give them.

Splink itself is given only the new and changed profiles and the rows a blocking
rule could pair them with (``matchers.probabilistic.near_new_records``).

A full re-link (u and m learnt again, the prior and term frequencies counted
again, every pair scored) happens when ``relink_reason`` gives a reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from matchers.probabilistic import DEFAULT_MODEL_PATH, MIN_TF_RECORDS, MIN_TRAIN_RECORDS
from matchers.records import has_table
from matchers.spark import linkage_backend

# Bump when linkage would give other pairs or scores for the same input and model
# in a way the fingerprint below does not see (it sees the files named here).
LINKAGE_VERSION = 2
_HERE = Path(__file__).parent
# The code that makes a profile's Splink input and scores a pair: a change to
# any of them makes the kept appearances, pairs and model stale.
FINGERPRINT_FILES = (
    _HERE / "standardise.py", _HERE / "records.py", _HERE / "comparisons.py", _HERE / "linkage.py",
    _HERE / "probabilistic.py", _HERE / "incremental.py", _HERE / "data" / "nicknames.csv",
    _HERE / "data" / "review.yaml",
)
# The model is learnt again once the profiles have grown by this share since it was
# learnt (a county's monthly run adds a few per cent: about twice a year).
RELINK_GROWTH = 0.25

RUNS_TABLE = "linkage.runs"
RUNS_COLUMNS = (
    "run INTEGER, linked_at TIMESTAMP, mode VARCHAR, reason VARCHAR, model_hash VARCHAR, "
    "model_file_hash VARCHAR, code_fingerprint VARCHAR, profiles BIGINT, "
    "profiles_at_training BIGINT, new_profiles BIGINT, vanished_profiles BIGINT, "
    "pairs_scored BIGINT, pairs_kept BIGINT, model_learnt BOOLEAN, seconds DOUBLE"
)


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else "none"


def code_fingerprint(learn: bool, weights_floor: float) -> str:
    """The linkage code, version, libraries and options a run's pairs depend on
    (16 hex digits)."""
    import splink

    h = hashlib.sha256(f"v{LINKAGE_VERSION}|duckdb {duckdb.__version__}|splink "
                       f"{splink.__version__}|learn {learn}|floor {weights_floor}".encode())
    for path in FINGERPRINT_FILES:
        h.update(path.name.encode() + b"|" + (path.read_bytes() if path.exists() else b""))
    return h.hexdigest()[:16]


def model_file_hash(model_path: Path | None) -> str:
    """The committed model file's hash (a new file means a full re-link)."""
    return _file_hash(model_path or DEFAULT_MODEL_PATH)


def model_hash(model: dict[str, Any]) -> str:
    """A Splink model's hash, as kept beside the pairs it scored."""
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return has_table(con, *name.split("."))


@dataclass
class PreviousRun:
    """What the previous run's linkage left, as far as the next run needs it."""

    run: int
    code_fingerprint: str
    model_file_hash: str
    profiles_at_training: int
    model_learnt: bool
    model: dict[str, Any] | None


STATE_TABLES = ("linkage.profile_inputs", "linkage.person_pairs", "linkage.pair_weights",
                "linkage.term_frequencies", "linkage.model_parameters")


def previous_run(con: duckdb.DuckDBPyConnection) -> PreviousRun | None:
    """The latest ``linkage.runs`` row with its model; None for a warehouse that
    never linked (or linked before runs were kept)."""
    if not _has_table(con, RUNS_TABLE):
        return None
    row = con.execute(
        f"""SELECT run, code_fingerprint, model_file_hash, profiles_at_training, model_learnt
            FROM {RUNS_TABLE} ORDER BY run DESC LIMIT 1""").fetchall()
    if not row:
        return None
    run, fp, mf, at_training, learnt = row[0]
    model = None
    if all(_has_table(con, t) for t in STATE_TABLES):
        got = con.execute("SELECT any_value(model_json), any_value(model_hash) "
                          "FROM linkage.model_parameters").fetchall()[0]
        if got[0] is not None and model_hash(json.loads(got[0])) == got[1]:
            model = json.loads(got[0])
    return PreviousRun(int(run), fp, mf, int(at_training or 0), bool(learnt), model)


def relink_reason(prev: PreviousRun | None, *, relink_all: bool, fingerprint: str,
                  model_file: str, profiles: int, learn: bool) -> str | None:
    """Why this run must re-link everything (learn the model again and score every
    pair), or None when it may link only what is new. Reviewer decisions need no
    re-link: they are edges at clustering time, which is redone at every run."""
    if relink_all:
        return "asked for (--relink-all)"
    if prev is None:
        return "first linkage of this warehouse"
    if prev.model is None:
        return "the previous run's model or pairs are not in the warehouse"
    if prev.model_file_hash != model_file:
        return "the committed model file changed"
    if prev.code_fingerprint != fingerprint:
        return "the linkage code changed (matchers.incremental.FINGERPRINT_FILES, version)"
    if linkage_backend() != "duckdb":
        return "pairs are scored on Spark (only DuckDB scores what is new)"
    if learn and not prev.model_learnt and profiles >= MIN_TRAIN_RECORDS:
        return "the model could not be learnt before and now can"
    had_tf = any(lv.get("tf_adjustment_column") for c in prev.model["comparisons"]
                 for lv in c["comparison_levels"])
    if had_tf != (profiles >= MIN_TF_RECORDS):
        return "term frequencies are now used" if not had_tf else "too few for term frequencies"
    if profiles > prev.profiles_at_training * (1 + RELINK_GROWTH):
        grown = profiles / max(prev.profiles_at_training, 1) - 1
        return (f"the profiles grew {grown:.0%} since the model was learnt "
                f"(re-learnt beyond {RELINK_GROWTH:.0%})")
    return None


def mark_new_profiles(con: duckdb.DuckDBPyConnection, table: str,
                      all_new: bool = False) -> tuple[int, int]:
    """Flag ``is_new`` on the rows of ``table`` (a Splink input with ``input_hash``)
    that the previous run did not score exactly so (every row with ``all_new``);
    returns (new or changed, vanished)."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT t.*, pi.profile_id IS NULL OR {bool(all_new)} AS is_new FROM {table} AS t
        LEFT JOIN linkage.profile_inputs AS pi
          ON pi.profile_id = CAST(t.unique_id AS BIGINT) AND pi.input_hash = t.input_hash""")
    new = con.execute(f"SELECT count(*) FROM {table} WHERE is_new").fetchall()[0][0]
    vanished = con.execute(
        f"""SELECT count(*) FROM linkage.profile_inputs AS pi WHERE NOT EXISTS (
            SELECT 1 FROM {table} AS t WHERE CAST(t.unique_id AS BIGINT) = pi.profile_id)"""
    ).fetchall()[0][0]
    return new, vanished


def keep_unchanged_pairs(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Drop from ``linkage.person_pairs`` and ``linkage.pair_weights`` every pair
    with a side that is new, changed or gone; returns the pairs kept."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fl_unchanged AS
        SELECT CAST(unique_id AS BIGINT) AS profile_id FROM {table} WHERE NOT is_new""")
    for name in ("linkage.person_pairs", "linkage.pair_weights"):
        con.execute(
            f"""CREATE OR REPLACE TABLE {name} AS SELECT pp.* FROM {name} AS pp
            SEMI JOIN _fl_unchanged AS a ON a.profile_id = pp.profile_l
            SEMI JOIN _fl_unchanged AS b ON b.profile_id = pp.profile_r""")
    con.execute("DROP TABLE _fl_unchanged")
    return con.execute("SELECT count(*) FROM linkage.person_pairs").fetchall()[0][0]


def write_profile_inputs(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """``linkage.profile_inputs``: the profiles this run's pairs were scored from."""
    con.execute(
        f"""CREATE OR REPLACE TABLE linkage.profile_inputs AS
        SELECT CAST(unique_id AS BIGINT) AS profile_id, input_hash FROM {table}""")


def record_run(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """Append this run's row to ``linkage.runs``."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} ({RUNS_COLUMNS})")
    run = con.execute(f"SELECT coalesce(max(run), 0) + 1 FROM {RUNS_TABLE}").fetchall()[0][0]
    cols = [c.split()[0] for c in RUNS_COLUMNS.split(", ")]
    values = {**row, "run": run}
    con.execute(
        f"INSERT INTO {RUNS_TABLE} VALUES (" + ", ".join(
            "CAST(now() AS TIMESTAMP)" if c == "linked_at" else "?" for c in cols) + ")",
        [values[c] for c in cols if c != "linked_at"])


# What the previous run's clustering left: every edge it clustered, each profile's
# component (of the edge graph) and cluster root, and each edge's fate.
CLUSTER_EDGES = "linkage.cluster_edges"
CLUSTER_NODES = "linkage.cluster_nodes"
CLUSTER_OUTCOME = "linkage.cluster_outcome"
CLUSTER_TABLES = (CLUSTER_EDGES, CLUSTER_NODES, CLUSTER_OUTCOME)
_EDGE_COLUMNS = "profile_l, profile_r, p, method"


def touched_profiles(con: duckdb.DuckDBPyConnection, edges: str, out: str) -> int | None:
    """``out`` (profile_id): the profiles of this run's edge graph ``edges`` whose
    component must be clustered again; the number of them, or None when the
    previous run left no clustering to keep (then every component is clustered).

    A profile is dirty when an edge at it was added, dropped or changed (its
    probability or method: a new profile, a vanished one, a reviewer's decision, a
    pair scored again). A component of this run's graph with no dirty profile has
    the very edges it had, so its clustering (which sees only its own profiles and
    edges: ``matchers.clustering.cluster``) is the previous run's. The components
    with a dirty profile are exactly the dirty profiles and the rest of the
    previous run's components they were in: a path in this run's graph from a
    profile to its nearest dirty one uses only edges the previous graph had."""
    if not all(_has_table(con, t) for t in CLUSTER_TABLES):
        return None
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fl_dirty AS
        WITH changed AS (
            (SELECT {_EDGE_COLUMNS} FROM {edges}
             EXCEPT ALL SELECT {_EDGE_COLUMNS} FROM {CLUSTER_EDGES})
            UNION ALL
            (SELECT {_EDGE_COLUMNS} FROM {CLUSTER_EDGES}
             EXCEPT ALL SELECT {_EDGE_COLUMNS} FROM {edges})
        )
        SELECT profile_l AS profile_id FROM changed UNION SELECT profile_r FROM changed""")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {out} AS
        WITH graph AS (SELECT profile_l AS profile_id FROM {edges}
                       UNION SELECT profile_r FROM {edges}),
        reached AS (
            SELECT profile_id FROM _fl_dirty
            UNION
            SELECT n.profile_id FROM {CLUSTER_NODES} AS n WHERE n.component IN (
                SELECT c.component FROM {CLUSTER_NODES} AS c
                SEMI JOIN _fl_dirty AS d USING (profile_id))
        )
        SELECT profile_id FROM reached SEMI JOIN graph USING (profile_id)""")
    # the touched part must be closed: no edge leaves it (else the argument above failed)
    (leaving,), = con.execute(
        f"""SELECT count(*) FROM {edges} AS e
        WHERE (e.profile_l IN (SELECT profile_id FROM {out}))
           <> (e.profile_r IN (SELECT profile_id FROM {out}))""").fetchall()
    if leaving:
        raise RuntimeError(f"{leaving} edges leave the re-clustered components")
    return con.execute(f"SELECT count(*) FROM {out}").fetchall()[0][0]


def write_cluster_state(con: duckdb.DuckDBPyConnection, edges: str, nodes: str,
                        outcome: str, touched: str | None) -> None:
    """Keep this run's clustering for the next run: the edge graph ``edges``, and
    for the components clustered now ``nodes`` (profile_id, component, root) and
    ``outcome`` (profile_l, profile_r, p, method, accepted) added to the previous
    run's rows of every other component (``touched`` None: nothing kept)."""
    if touched is None:
        keep_nodes = keep_outcome = ""
    else:
        gone = f"(SELECT profile_id FROM {touched} UNION SELECT profile_id FROM _fl_dirty)"
        keep_nodes = (f"SELECT * FROM {CLUSTER_NODES} WHERE profile_id NOT IN {gone} "
                      "UNION ALL ")
        keep_outcome = (f"SELECT * FROM {CLUSTER_OUTCOME} WHERE profile_l NOT IN {gone} "
                        "UNION ALL ")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _fl_cluster_nodes AS "
                f"{keep_nodes}SELECT profile_id, component, root FROM {nodes}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _fl_cluster_outcome AS {keep_outcome}"
                f"SELECT profile_l, profile_r, p, method, accepted FROM {outcome}")
    con.execute(f"CREATE OR REPLACE TABLE {CLUSTER_NODES} AS SELECT * FROM _fl_cluster_nodes")
    con.execute(f"CREATE OR REPLACE TABLE {CLUSTER_OUTCOME} AS "
                "SELECT * FROM _fl_cluster_outcome")
    con.execute(f"CREATE OR REPLACE TABLE {CLUSTER_EDGES} AS SELECT {_EDGE_COLUMNS} FROM {edges}")
