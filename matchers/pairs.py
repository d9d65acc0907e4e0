"""``famlink link``: person linkage between two CSV files, CSV to CSV.

Both files are scored together as one deduplication job so that the
duplicates inside a file are seen: when a left record matches several right
records, they are all kept only if those right records also match each other
(a duplicated person); otherwise only the best is the same person. That is a
one-to-one rule applied only where the data justify it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from matchers.probabilistic import load_model_settings, predict_pairs
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


def read_people_csv(path: Path) -> pd.DataFrame:
    """Read a person CSV as text; unknown columns ignored, missing ones empty."""
    df = pd.read_csv(
        path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
        encoding_errors="replace", on_bad_lines="skip", engine="python",
    )
    df.columns = [str(c).strip().lower().replace(" ", "_") for c in df.columns]
    df = df.rename(columns={k: v for k, v in ALIASES.items() if k in df.columns and v not in df})
    if "id" not in df.columns:
        df["id"] = [str(i) for i in range(1, len(df) + 1)]
    for col in INPUT_COLUMNS:
        if col not in df.columns:
            df[col] = None
    out = df[INPUT_COLUMNS].copy()
    for col in INPUT_COLUMNS:
        out[col] = out[col].astype(object).where(out[col].notna(), None)
        out[col] = out[col].map(lambda v: v.strip() if isinstance(v, str) else v)
        out[col] = out[col].map(lambda v: None if v == "" else v)
    return out


def _person_table(con: duckdb.DuckDBPyConnection, left: pd.DataFrame, right: pd.DataFrame) -> None:
    con.register("_left_raw", left)
    con.register("_right_raw", right)
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
        f"CASE WHEN postcode IS NOT NULL THEN [postcode] ELSE [] END AS postcodes "
        f"FROM ({standardise_sql('_pairs_raw')})"
    )
    con.unregister("_left_raw")
    con.unregister("_right_raw")


def _estimate_prior(con: duckdb.DuckDBPyConnection, n_left: int, n_right: int) -> float:
    """Share of all pairs that match, from a near-certain rule (recall ~0.6)."""
    sure = con.execute(
        """SELECT count(*) FROM _pairs_std l JOIN _pairs_std r
           ON l.dob = r.dob AND l.last_name = r.last_name AND l.first_name = r.first_name
           AND l.unique_id < r.unique_id"""
    ).fetchall()[0][0]
    n = n_left + n_right
    total = max(n * (n - 1) / 2, 1)
    est = max(sure, 1) / 0.6 / total
    return float(min(max(est, 1e-9), 0.5))


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


def link_files(left: Path, right: Path, out: Path, threshold: float | None = None) -> LinkSummary:
    """Write ``left_id, right_id, match_probability`` for pairs judged the same person."""
    start = time.perf_counter()
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    left_df, right_df = read_people_csv(Path(left)), read_people_csv(Path(right))
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    install_standardise_macros(con)
    _person_table(con, left_df, right_df)
    pairs = pd.DataFrame(columns=["left_id", "right_id", "match_probability"])
    if len(left_df) and len(right_df):
        settings = load_model_settings(link_type="dedupe_only")
        settings["probability_two_random_records_match"] = _estimate_prior(
            con, len(left_df), len(right_df)
        )
        n = len(left_df) + len(right_df)
        predict_pairs(con, "_pairs_std", settings, "_pairs_pred", reestimate_u=n >= 2000)
        scored = con.execute(
            """SELECT p.unique_id_l AS a, p.unique_id_r AS b, l.source_dataset AS src_l,
                      r.source_dataset AS src_r, p.match_probability AS p, p.match_weight AS mw,
                      p.twin_guard AS guard
               FROM _pairs_pred p JOIN _pairs_std l ON l.unique_id = p.unique_id_l
               JOIN _pairs_std r ON r.unique_id = p.unique_id_r"""
        ).df()
        scored["guard"] = scored["guard"].fillna(False).astype(bool)
        kept = resolve_pairs(scored, threshold)
        ids = dict(con.execute("SELECT unique_id, orig_id FROM _pairs_std").fetchall())
        pairs = pd.DataFrame(
            {
                "left_id": kept["left"].map(ids),
                "right_id": kept["right"].map(ids),
                "match_probability": kept["p"].round(6),
            }
        ).drop_duplicates(["left_id", "right_id"])
        pairs = pairs.sort_values(["left_id", "right_id"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pairs.to_csv(out, index=False)
    con.close()
    return LinkSummary(
        len(left_df), len(right_df), len(pairs), threshold, time.perf_counter() - start, out
    )
