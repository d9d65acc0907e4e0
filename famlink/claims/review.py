"""Doubt holds the claim: records that could be a member's and would undo an outcome.

Refusing a doubtful link is conservative for the link, not for the claim: a
re-referral recorded under a second child_id, scored 0.9997 against a cohort
child but refused by a guard, is exactly the record that says the family has
not turned around. So before a claim is recorded, each family with a claim due
is judged a second time with its doubtful records (``linkage.doubtful_links``:
scored against a member at or above the review floor, linked to no member)
linked to that member, inside a transaction that is rolled back. The rules run
unchanged, so whatever they measure, a family due under the real links but
not under the doubtful ones is ``held_for_review``: not claimed, with the pairs
and the outcome each would contradict kept in ``claims.held_pairs``.

A reviewer decides a pair (``famlink review decide``), appended to
``review.decisions`` with who and when; the latest decision for a pair applies
at every later run: "same" merges the records in the linkage (guards or not)
and the outcome is judged with them, "different" releases the hold. A family
claimed at an earlier run stays claimed: only claims not yet made are held.
"""

from __future__ import annotations

import csv
import getpass
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from famlink.claims.eligibility import Assessment, _table_exists, assess

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS review;
CREATE SEQUENCE IF NOT EXISTS review.decision_seq START 1;
CREATE TABLE IF NOT EXISTS review.decisions (
    decision_id BIGINT PRIMARY KEY,
    pair_id VARCHAR NOT NULL,
    person_ref VARCHAR NOT NULL,     -- the cohort member
    other_source VARCHAR NOT NULL,   -- the other side's source person (system:id)
    decision VARCHAR NOT NULL,       -- same | different
    reason VARCHAR NOT NULL,
    decided_by VARCHAR NOT NULL,
    decided_at TIMESTAMP NOT NULL
);
CREATE SCHEMA IF NOT EXISTS claims;
CREATE TABLE IF NOT EXISTS claims.held_pairs (
    run_id BIGINT, family_id VARCHAR, pair_id VARCHAR, person_ref VARCHAR,
    indicator VARCHAR,               -- the outcome the pair would contradict (or CE)
    status_if_same VARCHAR,          -- its status with the pair's records linked
    extract VARCHAR, record_key VARCHAR, match_probability DOUBLE, reason VARCHAR
);
"""

DECISIONS = ("same", "different")
DOUBT_METHOD = "doubtful"
HELD = "held_for_review"
REVIEW_COLUMNS = ["pair_id", "family_id", "person_ref", "extract", "record_key",
                  "match_probability", "reason", "indicator", "status_if_same", "run_id",
                  "as_of", "decision"]


@dataclass(frozen=True)
class HeldPair:
    """One doubtful record that would contradict one outcome of a held family."""

    family_id: str
    pair_id: str
    person_ref: str
    indicator: str
    status_if_same: str
    extract: str
    record_key: str
    match_probability: float
    reason: str


class ReviewError(ValueError):
    """A decision that cannot be recorded (unknown pair, missing reason or name)."""


def ensure_review_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the decisions and held-pairs tables if this warehouse has none yet."""
    con.execute(SCHEMA_SQL)


def _open_doubt(con: duckdb.DuckDBPyConnection, families: list[str]) -> int:
    """``_review_doubt``: the undecided doubtful records of these families, each with
    its round (a record doubtful for two members is tried for each in turn, since
    the rules give one record to one person)."""
    con.execute("CREATE OR REPLACE TEMP TABLE _review_families (family_id VARCHAR)")
    con.execute("INSERT INTO _review_families SELECT unnest(?)", [families])
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _review_doubt AS
        SELECT d.*, row_number() OVER (PARTITION BY d.extract, d.record_key
                                       ORDER BY d.match_probability DESC, d.person_ref) AS round
        FROM linkage.doubtful_links AS d JOIN _review_families USING (family_id)
        WHERE d.decision IS DISTINCT FROM 'different'"""
    )
    return int(con.execute("SELECT count(*) FROM _review_doubt").fetchall()[0][0])


def _contradicted(real: Assessment, after: Assessment | None) -> list[tuple[str, str]]:
    """(indicator, status) pairs the doubtful records turn from achieved to not."""
    if after is None:
        return [("(claim)", "not_assessed")]
    if real.claim_type == "CE":
        return [("CE", "not_due" if not after.ce_due else f"{after.claim_type} first")]
    found = [b.split("=", 1) for b in after.blocking if b not in real.blocking]
    return [(i, s) for i, s in found] or [("(claim)", after.claim_type or "not_due")]


# The families a round's re-evaluation needs: those with a doubtful record in the round,
# and any family whose member shares a linked record with theirs (the rules give a record
# to its most probable member, so such a family can take a record from them).
_ROUND_FAMILIES_SQL = """
WITH mine AS (SELECT DISTINCT family_id FROM _review_doubt WHERE round = $round),
refs AS (SELECT person_ref FROM staging.cohort_members
         WHERE family_id IN (SELECT family_id FROM mine)),
recs AS (SELECT DISTINCT extract, record_key FROM linkage.record_links
         WHERE person_ref IN (SELECT person_ref FROM refs)),
near AS (SELECT DISTINCT l.person_ref FROM linkage.record_links AS l
         JOIN recs USING (extract, record_key) WHERE l.person_ref IS NOT NULL)
SELECT family_id FROM mine
UNION
SELECT family_id FROM staging.cohort_members
WHERE person_ref IN (SELECT person_ref FROM near) AND family_id IS NOT NULL
"""


def _only_round_families(con: duckdb.DuckDBPyConnection, rnd: int) -> None:
    """Inside a round's rolled-back transaction: the cohort cut to the families the
    round can change (``_ROUND_FAMILIES_SQL``), so the rules judge those families only.

    The rules judge each family from its own members' records, and a round reads
    back only its own families, so their results are the same as with the whole
    cohort; the county-wide measures (deliveries, extracts with rows) do not read
    the cohort. A family is cut from ``raw.cohort_families``, which every cohort
    relation the rules read joins to."""
    con.execute(
        f"DELETE FROM raw.cohort_families WHERE family_id NOT IN ({_ROUND_FAMILIES_SQL})",
        {"round": rnd})


def find_holds(con: duckdb.DuckDBPyConnection, plan: str, as_of: date,
               families: list[str], *, whole_cohort: bool = False) -> list[HeldPair]:
    """Which of these families (each with a claim due, not yet claimed) the doubtful
    records would stop being due, and through which pairs and outcomes.

    Runs the rules again inside a transaction with each doubtful record linked to
    its member, reads the result and rolls back: the warehouse is left as it was.
    Each round judges only the families it can change (``_only_round_families``);
    ``whole_cohort`` judges every family, as the reference the tests compare with.
    """
    if not families or not _table_exists(con, "linkage.doubtful_links"):
        return []
    if not _open_doubt(con, sorted(set(families))):
        return []
    from rules.engine import evaluate_outcomes

    real = {a.family_id: a for a in assess(con, plan, as_of)}
    pairs = con.execute(
        "SELECT round, family_id, pair_id, person_ref, extract, record_key, match_probability, "
        "reason FROM _review_doubt ORDER BY round, family_id, pair_id, extract, record_key"
    ).fetchall()
    held: dict[tuple[str, str, str, str, str], HeldPair] = {}
    for rnd in sorted({p[0] for p in pairs}):
        this = [p for p in pairs if p[0] == rnd]
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f"""UPDATE linkage.record_links SET person_ref = d.person_ref,
                       person_id = 'P-' || d.person_ref, match_method = '{DOUBT_METHOD}',
                       match_probability = d.match_probability
                FROM _review_doubt AS d
                WHERE d.round = ? AND record_links.extract = d.extract
                  AND record_links.record_key = d.record_key""",
                [rnd],
            )
            if not whole_cohort and _table_exists(con, "raw.cohort_families"):
                _only_round_families(con, rnd)
            evaluate_outcomes(con, plan, as_of)
            after = {a.family_id: a for a in assess(con, plan, as_of)}
            evidence = set(con.execute(
                """SELECT DISTINCT e.family_id, trim(e.indicator), e.extract,
                          CAST(e.record_key AS VARCHAR)
                FROM marts.outcome_evidence AS e
                JOIN _review_doubt AS d ON d.round = ? AND d.extract = e.extract
                 AND d.record_key = CAST(e.record_key AS VARCHAR)
                WHERE e.plan = ? AND CAST(e.as_of AS DATE) = ?""",
                [rnd, plan, as_of]).fetchall())
        finally:
            con.execute("ROLLBACK")
        for fam in sorted({p[1] for p in this}):
            before = real.get(fam)
            if before is None or before.claim_type is None:
                continue
            now = after.get(fam)
            if now is not None and now.claim_type == before.claim_type:
                continue
            mine = [p for p in this if p[1] == fam]
            for indicator, status in _contradicted(before, now):
                shown = [p for p in mine if (fam, indicator, p[4], p[5]) in evidence] or mine
                for _, _, pair_id, ref, extract, key, prob, reason in shown:
                    held[(fam, pair_id, indicator, extract, key)] = HeldPair(
                        fam, pair_id, ref, indicator, status, extract, key, float(prob), reason)
    con.execute("DROP TABLE IF EXISTS _review_doubt")
    con.execute("DROP TABLE IF EXISTS _review_families")
    return [held[k] for k in sorted(held)]


def record_holds(con: duckdb.DuckDBPyConnection, run_id: int, holds: list[HeldPair]) -> None:
    """Keep the run's held pairs (append-only, like the ledger)."""
    ensure_review_schema(con)
    if not holds:
        return
    con.executemany(
        "INSERT INTO claims.held_pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[run_id, h.family_id, h.pair_id, h.person_ref, h.indicator, h.status_if_same,
          h.extract, h.record_key, h.match_probability, h.reason] for h in holds],
    )


# ------------------------------------------------------------------ reading

def held_rows(con: duckdb.DuckDBPyConnection, run_id: int | None = None,
              family_id: str | None = None) -> list[dict[str, object]]:
    """Held pairs of one run (default: the latest run), with any decision taken since.

    Ids and probabilities only: the names and DOBs behind a pair stay in the
    linkage report's clerical review list.
    """
    if not _table_exists(con, "claims.held_pairs") or not _table_exists(con, "claims.runs"):
        return []
    if run_id is None:
        row = con.execute("SELECT max(run_id) FROM claims.runs").fetchone()
        run_id = row[0] if row else None
        if run_id is None:
            return []
    decided = ("LEFT JOIN (SELECT pair_id, decision || ' by ' || decided_by || ' at ' || "
               "strftime(decided_at, '%Y-%m-%d %H:%M') AS decision FROM review.decisions "
               "QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY decision_id DESC) = 1)"
               " AS d USING (pair_id)"
               if _table_exists(con, "review.decisions") else
               "LEFT JOIN (SELECT NULL::VARCHAR AS pair_id, NULL::VARCHAR AS decision) AS d "
               "USING (pair_id)")
    cur = con.execute(
        f"""SELECT h.pair_id, h.family_id, h.person_ref, h.extract, h.record_key,
                   h.match_probability, h.reason, h.indicator, h.status_if_same, h.run_id,
                   r.as_of, d.decision
            FROM claims.held_pairs AS h JOIN claims.runs AS r USING (run_id) {decided}
            WHERE h.run_id = ? AND (CAST(? AS VARCHAR) IS NULL OR h.family_id = ?)
            ORDER BY h.family_id, h.pair_id, h.indicator, h.extract, h.record_key""",
        [run_id, family_id, family_id],
    )
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def decisions_about(con: duckdb.DuckDBPyConnection,
                    person_refs: list[str]) -> list[dict[str, object]]:
    """Every decision recorded on these members' pairs, oldest first (the audit pack)."""
    if not person_refs or not _table_exists(con, "review.decisions"):
        return []
    cur = con.execute(
        "SELECT pair_id, person_ref, decision, reason, decided_by, decided_at "
        "FROM review.decisions WHERE list_contains(?, person_ref) ORDER BY decision_id",
        [person_refs])
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def write_review_csv(rows: list[dict[str, object]], out: Path) -> None:
    """The held pairs as CSV (the same columns ``famlink review`` prints)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(REVIEW_COLUMNS)
        for r in rows:
            w.writerow(["" if r[c] is None else r[c] for c in REVIEW_COLUMNS])


# ------------------------------------------------------------------ deciding

def record_decision_in(con: duckdb.DuckDBPyConnection, pair_id: str, decision: str,
                       by: str, reason: str) -> str:
    """Append a decision on a doubtful pair; returns the member's person_ref."""
    if decision not in DECISIONS:
        raise ReviewError(f"a decision is one of {', '.join(DECISIONS)}, not {decision!r}")
    if not reason or not reason.strip():
        raise ReviewError("a decision needs a reason (what the reviewer checked)")
    if not by or not by.strip():
        raise ReviewError("a decision needs the name of who took it")
    row = None
    if _table_exists(con, "linkage.doubtful_links"):
        row = con.execute(
            "SELECT person_ref, other_source FROM linkage.doubtful_links WHERE pair_id = ? "
            "LIMIT 1", [pair_id]).fetchone()
    if row is None and _table_exists(con, "review.decisions"):
        # merged by an earlier "same": the pair can still be decided again
        row = con.execute(
            "SELECT person_ref, other_source FROM review.decisions WHERE pair_id = ? "
            "ORDER BY decision_id DESC LIMIT 1", [pair_id]).fetchone()
    if row is None:
        raise ReviewError(f"pair {pair_id} is not a doubtful pair of the latest run "
                          "(famlink review lists them)")
    ensure_review_schema(con)
    con.execute(
        "INSERT INTO review.decisions VALUES (nextval('review.decision_seq'), ?, ?, ?, ?, ?, ?, ?)",
        [pair_id, row[0], row[1], decision, reason.strip(), by.strip(),
         datetime.now().replace(microsecond=0)],
    )
    return str(row[0])


def login_name() -> str:
    """Who is deciding when ``--by`` is not given: the login name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def record_decision(warehouse: Path, pair_id: str, decision: str, by: str | None,
                    reason: str) -> str:
    """``famlink review decide``: written like a withdrawal, through
    ``build_then_publish`` (readers never see a half-written file; a failure
    leaves the published warehouse as it was). The next run applies it."""
    from famlink.warehouse import build_then_publish

    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist")
    who = by or login_name()
    with build_then_publish(warehouse) as con:
        return record_decision_in(con, pair_id, decision, who, reason)
