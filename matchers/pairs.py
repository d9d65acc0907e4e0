"""``famlink link``: person linkage between two CSV files, CSV to CSV.

Both files are scored together as one deduplication job so that the
duplicates inside a file are seen: when a left record matches several right
records, they are all kept only if those right records also match each other
(a duplicated person); otherwise only the best is the same person. That is a
one-to-one rule applied only where the data justify it. The same file as left
and right deduplicates it (``dedupe_pairs``). With 1,000 rows or more the
model's parameters are learnt from the files themselves
(``probabilistic.predict_pairs(learn=True)``); the summary says how they were got.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from matchers.comparisons import (
    FIRST_NAME_COMPATIBLE_SQL,
    RARE_NAME_MIN_RECORDS,
    between,
    with_first_name_seen_sql,
)
from matchers.probabilistic import (
    DEFAULT_PRIOR_RECALL,
    MIN_TF_RECORDS,
    add_blocking_columns,
    estimate_prior,
    load_model,
    predict_pairs,
)
from matchers.standardise import install_standardise_macros, standardise_sql

DEFAULT_THRESHOLD = 0.9
INPUT_COLUMNS = [
    "id", "first_name", "middle_names", "last_name", "dob", "sex", "postcode", "address",
    "upn", "nhs_number", "ni_number",
]
ALIASES = {
    "given_name": "first_name", "forename": "first_name", "firstname": "first_name",
    "surname": "last_name", "lastname": "last_name", "family_name": "last_name",
    "date_of_birth": "dob", "gender": "sex", "middle_name": "middle_names",
    "rec_id": "id", "unique_id": "id", "record_id": "id",
}


@dataclass(frozen=True)
class LinkSummary:
    left_rows: int
    right_rows: int
    pairs: int
    threshold: float
    seconds: float
    out: Path
    model_note: str = ""
    dedupe: bool = False
    review: int = 0
    review_out: Path | None = None
    twins_apart: int = 0


def read_people_csv(path: Path) -> pd.DataFrame:
    """Read a person CSV as text, never failing on its content: a UTF-8 BOM,
    CRLF, bytes that are not UTF-8 (replaced), rows with too many or too few
    fields (cut or padded), an empty file (no rows). Unknown columns are
    ignored, missing ones are empty, column names are matched loosely. A header
    with no name and no date-of-birth column is refused (ValueError, one line)."""
    text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    rows = [r for r in rows if any(v.strip() for v in r)]
    header = [str(c).strip().lower().replace(" ", "_") for c in (rows[0] if rows else [])]
    header = [ALIASES.get(c, c) if ALIASES.get(c, c) not in header else c for c in header]
    index = {c: i for i, c in reversed(list(enumerate(header)))}
    if header and not {"first_name", "last_name", "dob"} & set(index):
        raise ValueError(f"{path}: no name or date-of-birth column in the header (expected "
                         "first_name/given_name, last_name/surname or dob/date_of_birth)")
    out: dict[str, list[str | None]] = {c: [] for c in INPUT_COLUMNS}
    for n, row in enumerate(rows[1:], start=1):
        for col in INPUT_COLUMNS:
            i = index.get(col)
            v = row[i].strip() if i is not None and i < len(row) else ""
            if col == "id" and i is None:
                v = str(n)
            out[col].append(v or None)
    return pd.DataFrame(out, columns=INPUT_COLUMNS, dtype=object)


def _person_table(
    con: duckdb.DuckDBPyConnection, left: pd.DataFrame, right: pd.DataFrame | None
) -> None:
    """``_pairs_std``: both files standardised (only ``left`` when deduplicating)."""
    con.register("_left_raw", left)
    con.register("_right_raw", right if right is not None else left.iloc[0:0])
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _pairs_raw AS
        SELECT 'l' || row_number() OVER () AS record_id, 'left' AS source_dataset,
               id AS orig_id, first_name, middle_names, last_name, fl_parse_date(dob) AS dob,
               sex, postcode, address, upn, nhs_number, ni_number FROM _left_raw
        UNION ALL
        SELECT 'r' || row_number() OVER (), 'right', id, first_name, middle_names, last_name,
               fl_parse_date(dob), sex, postcode, address, upn, nhs_number, ni_number
        FROM _right_raw"""
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _pairs_std AS SELECT *, record_id AS unique_id, "
        f"CASE WHEN postcode IS NOT NULL THEN [postcode] ELSE [] END AS postcodes, "
        f"false AS postcode_is_location "
        f"FROM ({standardise_sql('_pairs_raw')})"
    )
    add_blocking_columns(con, "_pairs_std")
    con.unregister("_left_raw")
    con.unregister("_right_raw")


def resolve_pairs(scored: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Left-right pairs at the threshold, made one-to-one only where the extra
    candidates are not themselves duplicates of the best one."""
    cross = scored[(scored.src_l != scored.src_r) & (scored.p >= threshold) & ~scored.guard]
    within = scored[(scored.src_l == scored.src_r) & (scored.p >= threshold) & ~scored.guard]
    dup = set(zip(within.a, within.b, strict=True)) | set(zip(within.b, within.a, strict=True))
    # orient pairs as (left record, right record)
    lr = pd.DataFrame(
        {
            "left": cross.a.where(cross.src_l == "left", cross.b),
            "right": cross.b.where(cross.src_l == "left", cross.a),
            "p": cross.p,
            "mw": cross.mw,
        }
    )
    keep = pd.Series(True, index=lr.index)
    for own, other in (("left", "right"), ("right", "left")):
        for _, grp in lr[keep].groupby(own):
            if len(grp) < 2:
                continue
            best = grp.sort_values(["mw", other], ascending=[False, True]).iloc[0][other]
            for idx, row in grp.iterrows():
                if row[other] != best and (row[other], best) not in dup:
                    keep[idx] = False
    return lr[keep]


def forename_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int] | None:
    """Records per forename in ``_pairs_std`` (the Python side of the
    ``first_name_seen`` column), or None when the files are too small to tell."""
    if con.execute("SELECT count(*) FROM _pairs_std").fetchall()[0][0] < RARE_NAME_MIN_RECORDS:
        return None
    return dict(con.execute("SELECT first_name, count(*) FROM _pairs_std "
                            "WHERE first_name IS NOT NULL GROUP BY ALL").fetchall())


def dedupe_pairs(
    con: duckdb.DuckDBPyConnection, scored: pd.DataFrame, threshold: float,
    refused_out: list | None = None,
) -> pd.DataFrame:
    """Pairs within one file: the pairs at the threshold clustered as the monthly
    linkage clusters them (strongest first, refusing merges that would join
    conflicting identifiers, twins or a generation), then every pair of rows
    of one cluster (a person may have several duplicates; two duplicates of
    one original are one person too). A pair not scored directly gets the
    weakest probability of its cluster. The pairs a cluster constraint refused
    are appended to ``refused_out`` as (left, right, p)."""
    from matchers.clustering import Edge, Node, cluster

    kept = scored[(scored.p >= threshold) & ~scored.guard]
    if kept.empty:
        return pd.DataFrame(columns=["left", "right", "p", "mw"])
    ids = sorted(set(kept.a) | set(kept.b))
    num = {u: i for i, u in enumerate(ids)}
    con.register("_dd_ids", pd.DataFrame({"unique_id": ids}))
    rows = con.execute(
        """SELECT unique_id, upn, nhs_number, ni_number, dob_str, first_name, last_name,
                  other_names FROM _pairs_std JOIN _dd_ids USING (unique_id)""").fetchall()
    con.unregister("_dd_ids")
    nodes = [Node(num[r[0]], r[1], r[2], r[3], None, r[4], r[5], r[6], tuple(r[7] or ()))
             for r in rows]
    edges = [Edge(num[a], num[b], float(p), "probabilistic")
             for a, b, p in zip(kept.a, kept.b, kept.p, strict=True)]
    groups = {n: frozenset(g) for n, g in con.execute("SELECT * FROM fl_name_groups").fetchall()}
    roots, accepted, refused = cluster(nodes, edges, groups, forename_counts(con))
    if refused_out is not None:
        refused_out.extend((ids[e.a], ids[e.b], e.probability) for e in refused)
    direct = {(min(e.a, e.b), max(e.a, e.b)): e.probability for e in accepted}
    members: dict[int, list[int]] = {}
    weakest: dict[int, float] = {}
    for x, root in roots.items():
        members.setdefault(root, []).append(x)
    for e in accepted:
        root = roots[e.a]
        weakest[root] = min(weakest.get(root, 1.0), e.probability)
    out = []
    for root, xs in members.items():
        xs = sorted(xs)
        for i, a in enumerate(xs):
            for b in xs[i + 1:]:
                out.append((ids[a], ids[b], direct.get((a, b), weakest.get(root, threshold))))
    df = pd.DataFrame(out, columns=["left", "right", "p"])
    df["mw"] = 0.0
    return df


# The comparisons whose exact levels make up the prior's rule (``PRIOR_RULE``).
PRIOR_RULE_COMPARISONS = ("first_name", "last_name", "dob")


def implied_prior_recall(settings: dict) -> float | None:
    """The share of one person's record pairs that agree exactly on forename,
    surname and DOB, as the learnt model sees it: the product of those exact
    levels' m (Splink's own assumption of independence given a match). A source
    that mistypes more has a lower recall, so its prior is scaled up more than
    the committed model's fixed recall (measured on one synthetic county) would."""
    got = 1.0
    for c in settings["comparisons"]:
        if c["output_column_name"] in PRIOR_RULE_COMPARISONS:
            m = [lv.get("m_probability") for lv in c["comparison_levels"]
                 if lv.get("label_for_charts") == "exact"]
            if not m or not isinstance(m[0], (int, float)):
                return None
            got *= float(m[0])
    return min(max(got, 0.05), 1.0)


def shift_prior(con: duckdb.DuckDBPyConnection, table: str, old: float, new: float) -> None:
    """Re-score Splink's predictions in ``table`` for another prior: the prior is
    one additive term of each pair's match weight (log2 of its odds)."""
    d = math.log2(new / (1 - new)) - math.log2(old / (1 - old))
    con.execute(f"UPDATE {table} SET match_weight = match_weight + {d!r}, "
                f"match_probability = 1 / (1 + pow(2, -(match_weight + {d!r})))")


# Why a pair at the threshold was not linked (the words of the warehouse's
# ``linkage.clerical_review``), for the review file ``famlink link`` writes.
REVIEW_REASONS = {
    "twin_guard": "twin guard: same DOB, different forename (no second person in the data)",
    "generation_guard": "generation guard: DOBs a generation apart",
    "household_guard": "household guard: only surname and address agree",
    "cluster": "cluster constraint: would join two people",
}


def twins_in_one_delivery(con: duckdb.DuckDBPyConnection, pairs: pd.DataFrame) -> set:
    """The twin-guarded pairs (a, b) the data show to be two people: one file (a
    delivery) holds, at one side's address and date of birth, a record other
    than that side whose forename fits the other side's: two source ids with
    different forenames at one address in one delivery. (Deduplicating, the
    pair itself is such two records when they share the address.)"""
    if pairs.empty:
        return set()
    con.register("_tw_pairs", pairs[["a", "b"]])
    got = con.execute(f"""
        WITH sides AS (SELECT a AS x, b AS y FROM _tw_pairs UNION ALL SELECT b, a FROM _tw_pairs),
        std AS ({with_first_name_seen_sql("_pairs_std")})
        SELECT DISTINCT s.x, s.y FROM sides s
        JOIN std x ON x.unique_id = s.x
        JOIN std y ON y.unique_id = s.y
        JOIN std c ON c.source_dataset = x.source_dataset AND c.unique_id <> x.unique_id
             AND c.dob = x.dob
             AND coalesce(c.address = x.address, c.postcode = x.postcode, false)
        WHERE {between(FIRST_NAME_COMPATIBLE_SQL, "c", "y")}""").fetchall()
    con.unregister("_tw_pairs")
    return {(x, y) for x, y in got} | {(y, x) for x, y in got}


def review_pairs(
    con: duckdb.DuckDBPyConnection, scored: pd.DataFrame, threshold: float,
    refused: pd.DataFrame | None = None, dedupe: bool = True,
) -> tuple[pd.DataFrame, int]:
    """(pairs for a person to decide, with the reason; twin pairs kept apart on
    evidence): every pair at the threshold that a guard stopped, or (``refused``)
    a cluster constraint, except twins the data show to be two people."""
    at = scored[(scored.p >= threshold) & scored.guard]
    if not dedupe:  # a pair within one file is no left-right link
        at = at[at.src_l != at.src_r]
    reason = pd.Series(REVIEW_REASONS["household_guard"], index=at.index)
    reason[at.generation_guard] = REVIEW_REASONS["generation_guard"]
    reason[at.twin_guard] = REVIEW_REASONS["twin_guard"]
    apart = twins_in_one_delivery(con, at[at.twin_guard])
    evident = pd.Series([(a, b) in apart for a, b in zip(at.a, at.b, strict=True)],
                        index=at.index, dtype=bool) & at.twin_guard
    out = pd.DataFrame({"left": at.a, "right": at.b, "p": at.p, "reason": reason})[~evident]
    if refused is not None and not refused.empty:
        out = pd.concat([out, refused.assign(reason=REVIEW_REASONS["cluster"])],
                        ignore_index=True)
    return out, int(evident.sum())


def link_files(left: Path, right: Path, out: Path, threshold: float | None = None) -> LinkSummary:
    """Write ``left_id, right_id, match_probability`` for pairs judged the same person.

    The same file as left and right deduplicates it: every pair of its rows that
    are one person (each pair once)."""
    start = time.perf_counter()
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    dedupe = Path(left).resolve() == Path(right).resolve()
    left_df = read_people_csv(Path(left))
    right_df = left_df if dedupe else read_people_csv(Path(right))
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    install_standardise_macros(con)
    _person_table(con, left_df, None if dedupe else right_df)
    pairs = pd.DataFrame(columns=["left_id", "right_id", "match_probability"])
    review = pd.DataFrame(columns=["left", "right", "p", "reason"])
    ids: dict = {}
    twins_apart = 0
    note = "no records to link"
    if len(left_df) and len(right_df):
        n = len(left_df) + (0 if dedupe else len(right_df))
        settings, meta = load_model(link_type="dedupe_only",
                                    term_frequencies=n >= MIN_TF_RECORDS)
        settings["probability_two_random_records_match"] = estimate_prior(
            con, "_pairs_std", meta.get("prior_rule_recall", DEFAULT_PRIOR_RECALL)
        )
        used = predict_pairs(con, "_pairs_std", settings, "_pairs_pred", learn=True)
        note = used.note
        recall = implied_prior_recall(used.settings) if used.trained else None
        if recall is not None:
            prior = estimate_prior(con, "_pairs_std", recall)
            shift_prior(con, "_pairs_pred", settings["probability_two_random_records_match"],
                        prior)
            note += (f"; prior {prior:.3g} (its rule's recall {recall:.2f}, from the learnt "
                     "exact-agreement m of forename, surname and DOB)")
        scored = con.execute(
            """SELECT p.unique_id_l AS a, p.unique_id_r AS b, l.source_dataset AS src_l,
                      r.source_dataset AS src_r, p.match_probability AS p, p.match_weight AS mw,
                      coalesce(p.twin_guard, false) AS twin_guard,
                      coalesce(p.generation_guard, false) AS generation_guard,
                      coalesce(p.household_guard, false) AS household_guard
               FROM _pairs_pred p JOIN _pairs_std l ON l.unique_id = p.unique_id_l
               JOIN _pairs_std r ON r.unique_id = p.unique_id_r"""
        ).df()
        for g in ("twin_guard", "generation_guard", "household_guard"):
            scored[g] = scored[g].astype(bool)
        scored["guard"] = scored.twin_guard | scored.generation_guard | scored.household_guard
        refused: list = []
        kept = (dedupe_pairs(con, scored, threshold, refused) if dedupe
                else resolve_pairs(scored, threshold))
        ids = dict(con.execute("SELECT unique_id, orig_id FROM _pairs_std").fetchall())
        review, twins_apart = review_pairs(
            con, scored, threshold, pd.DataFrame(refused, columns=["left", "right", "p"]),
            dedupe)
        pairs = pd.DataFrame(
            {
                "left_id": kept["left"].map(ids),
                "right_id": kept["right"].map(ids),
                "match_probability": kept["p"].round(6),
            }
        )
        if dedupe:  # each pair once, the smaller id on the left
            swap = pairs.left_id > pairs.right_id
            pairs.loc[swap, ["left_id", "right_id"]] = pairs.loc[
                swap, ["right_id", "left_id"]].to_numpy()
        pairs = pairs.drop_duplicates(["left_id", "right_id"])
        pairs = pairs.sort_values(["left_id", "right_id"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pairs.to_csv(out, index=False)
    review_out = review_path(out)
    review_csv = _review_csv(review, ids, dedupe)
    linked = set(zip(pairs.left_id, pairs.right_id, strict=True))
    review_csv = review_csv[[k not in linked for k in zip(
        review_csv.left_id, review_csv.right_id, strict=True)]]
    review_csv.to_csv(review_out, index=False)
    con.close()
    return LinkSummary(
        len(left_df), len(right_df), len(pairs), threshold, time.perf_counter() - start, out,
        note, dedupe, len(review_csv), review_out, twins_apart,
    )


def review_path(out: Path) -> Path:
    """Where ``famlink link`` writes its review pairs: beside the pairs file."""
    return Path(out).with_name(Path(out).stem + "_review.csv")


def _review_csv(review: pd.DataFrame, ids: dict, dedupe: bool) -> pd.DataFrame:
    """``left_id, right_id, match_probability, reason`` (source ids; left file first)."""
    cols = ["left_id", "right_id", "match_probability", "reason"]
    if review.empty:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame({"left_id": review["left"], "right_id": review["right"],
                       "match_probability": review["p"].astype(float).round(6),
                       "reason": review["reason"]})
    # left file's record first (record ids are 'l<n>' / 'r<n>'); then the source ids
    swap = df.left_id.str[0] > df.right_id.str[0]
    df.loc[swap, ["left_id", "right_id"]] = df.loc[swap, ["right_id", "left_id"]].to_numpy()
    df["left_id"], df["right_id"] = df.left_id.map(ids), df.right_id.map(ids)
    if dedupe:
        swap = df.left_id > df.right_id
        df.loc[swap, ["left_id", "right_id"]] = df.loc[swap, ["right_id", "left_id"]].to_numpy()
    return df.drop_duplicates(["left_id", "right_id"]).sort_values(cols[:2])[cols]
