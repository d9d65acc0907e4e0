"""The claims ledger: an append-only record of every claim and withdrawal.

A results payment is made once per family, ever, and a paid claim that audit
finds invalid is paid back, not forgotten. So the ledger never updates or
deletes: ``claims.events`` gets a 'claimed' event when a run records a claim and
a 'withdrawn' event when an analyst withdraws it; ``claims.ledger`` is the
current view (one row per claim with its status) and ``claims.current_claims``
the claims that stand (not withdrawn). A family with any 'claimed'
event is never claimed again, withdrawn or not: the withdrawal says the claim
was invalid at the time, and re-claiming the same family would need a fresh
audit decision outside this tool (a unique index enforces it in the database).

A family whose claim is due but whose doubtful records (scored against a member,
not linked) would undo an outcome is not claimed: its assessment is
``held_for_review`` and the pairs are kept in ``claims.held_pairs``
(``famlink.claims.review``).

Each claim also freezes the evidence it was made on (indicator statuses,
outcomes, evidence records, CE status) and a snapshot of its whole audit pack
(``claims.claim_snapshots``: members, linked records, each rule's findings and
window), because the marts and the linkage are rebuilt by every run and an
auditor asking about a claim a year later must see what it rested on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from famlink import __version__
from famlink.claims.eligibility import _table_exists, due_parameters, due_sql
from famlink.claims.review import ensure_review_schema, find_holds, record_holds

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS claims;
CREATE SEQUENCE IF NOT EXISTS claims.run_seq START 1;
CREATE SEQUENCE IF NOT EXISTS claims.claim_seq START 1;
CREATE SEQUENCE IF NOT EXISTS claims.event_seq START 1;
CREATE TABLE IF NOT EXISTS claims.runs (
    run_id BIGINT PRIMARY KEY,
    plan VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    families BIGINT,
    eligible_families BIGINT,
    ssp_due BIGINT,
    ce_due BIGINT,
    both_due BIGINT,
    new_claims BIGINT,
    new_ssp BIGINT,
    new_ce BIGINT,
    already_claimed BIGINT,
    famlink_version VARCHAR
);
ALTER TABLE claims.runs ADD COLUMN IF NOT EXISTS held_for_review BIGINT;
CREATE TABLE IF NOT EXISTS claims.events (
    event_id BIGINT PRIMARY KEY,
    claim_id BIGINT NOT NULL,
    family_id VARCHAR NOT NULL,
    event VARCHAR NOT NULL,          -- claimed | withdrawn
    run_id BIGINT,                   -- the run that recorded the claim
    plan VARCHAR,
    as_of DATE,                      -- that run's as-of
    claim_type VARCHAR,              -- SSP | CE
    achieved_on DATE,
    problems VARCHAR,                -- SSP: '1;2;5'; CE: ''
    reason VARCHAR,                  -- withdrawal reason
    recorded_by VARCHAR,
    recorded_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_one_per_family ON claims.events (family_id, event);
CREATE TABLE IF NOT EXISTS claims.assessments (
    run_id BIGINT,
    family_id VARCHAR,
    attached_on DATE,
    national_problems INTEGER,
    problems_at_attachment INTEGER[],
    indicators_at_attachment INTEGER,
    eligible BOOLEAN,
    ssp_due BOOLEAN,
    ssp_achieved_on DATE,
    ce_due BOOLEAN,
    ce_achieved_on DATE,
    ce_person_ref VARCHAR,
    ce_route VARCHAR,
    blocking VARCHAR[],
    later_indicators VARCHAR[],
    claim_type VARCHAR,
    achieved_on DATE,
    problems VARCHAR,
    decision VARCHAR  -- claimed | already_claimed | held_for_review | not_due | not_eligible
);
CREATE TABLE IF NOT EXISTS claims.claim_indicators (
    claim_id BIGINT, family_id VARCHAR, indicator VARCHAR, problem INTEGER,
    person_ref VARCHAR, identified_on DATE, attached_on DATE,
    status VARCHAR, achieved_on DATE, outcome_id VARCHAR
);
CREATE TABLE IF NOT EXISTS claims.claim_outcomes (
    claim_id BIGINT, family_id VARCHAR, indicator VARCHAR, problem INTEGER,
    person_ref VARCHAR, outcome_id VARCHAR, status VARCHAR, achieved_on DATE, rule VARCHAR
);
CREATE TABLE IF NOT EXISTS claims.claim_evidence (
    claim_id BIGINT, family_id VARCHAR, indicator VARCHAR, outcome_id VARCHAR,
    extract VARCHAR, delivery_id BIGINT, month VARCHAR, record_key VARCHAR,
    person_ref VARCHAR, match_method VARCHAR, match_probability DOUBLE, detail VARCHAR
);
CREATE TABLE IF NOT EXISTS claims.claim_ce (
    claim_id BIGINT, family_id VARCHAR, person_ref VARCHAR, route VARCHAR,
    off_benefit_on DATE, qualifies_on DATE, status VARCHAR
);
CREATE TABLE IF NOT EXISTS claims.claim_snapshots (
    claim_id BIGINT, family_id VARCHAR, run_id BIGINT, recorded_at TIMESTAMP,
    famlink_version VARCHAR,
    pack VARCHAR                     -- JSON: the family's audit pack as built at claim time
);
CREATE OR REPLACE VIEW claims.ledger AS
SELECT c.claim_id, c.family_id, c.claim_type, c.achieved_on, c.problems,
       c.run_id, c.plan, c.as_of, c.recorded_at AS claimed_at,
       CASE WHEN w.event_id IS NULL THEN 'claimed' ELSE 'withdrawn' END AS status,
       w.recorded_at AS withdrawn_at, w.reason AS withdrawn_reason,
       w.recorded_by AS withdrawn_by
FROM claims.events AS c
LEFT JOIN claims.events AS w ON w.claim_id = c.claim_id AND w.event = 'withdrawn'
WHERE c.event = 'claimed';
CREATE OR REPLACE VIEW claims.current_claims AS
SELECT * FROM claims.ledger WHERE status = 'claimed';
"""

RUN_BY = "famlink run"


@dataclass(frozen=True)
class ClaimsSummary:
    """What one run found and recorded (printed by ``famlink run``)."""

    run_id: int
    plan: str
    as_of: date
    families: int
    eligible_families: int
    ssp_due: int
    ce_due: int
    both_due: int
    new_claims: int
    new_ssp: int
    new_ce: int
    already_claimed: int             # due by the rules now, but claimed at an earlier run
    held_for_review: int = 0         # due, but a doubtful record would undo an outcome

    def as_dict(self) -> dict[str, object]:
        """Plain dict for logs and JSON."""
        return asdict(self)

    def __str__(self) -> str:
        return (f"claims run {self.run_id} ({self.plan}, as of {self.as_of}): "
                f"{self.eligible_families} of {self.families} families eligible; "
                f"due SSP {self.ssp_due}, CE {self.ce_due}; "
                f"new claims {self.new_claims} (SSP {self.new_ssp}, CE {self.new_ce}); "
                f"already claimed {self.already_claimed}; "
                f"held for review {self.held_for_review} (GBP {self.held_gbp:,} held back)")

    @property
    def held_gbp(self) -> int:
        """The results payments the held families would bring if claimed."""
        from famlink.claims.returns import PAYMENT_GBP

        return self.held_for_review * PAYMENT_GBP


def ensure_claims_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ledger tables and views if this warehouse has none yet."""
    con.execute(SCHEMA_SQL)
    ensure_review_schema(con)


def has_ledger(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this warehouse has a claims ledger (a read-only reader cannot create one)."""
    return _table_exists(con, "claims.events")


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> int:
    row = con.execute(sql, params or []).fetchone()
    return int(row[0] or 0) if row else 0


def record_due_claims(con: duckdb.DuckDBPyConnection, plan: str, as_of: date) -> ClaimsSummary:
    """Record the claims due at this run; a family already in the ledger is skipped.

    Runs inside the monthly run's connection (the copy that is published only
    if the whole run succeeds), so a failed run leaves the ledger untouched.
    """
    ensure_claims_schema(con)
    recorded_at = datetime.now().replace(microsecond=0)
    if _table_exists(con, "marts.family_problems"):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _claims_due AS {due_sql(con)}",
                    due_parameters(plan, as_of))
    else:  # nothing evaluated yet: an empty run is still recorded
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _claims_due AS SELECT * FROM claims.assessments "
            "WHERE false")
        con.execute("ALTER TABLE _claims_due DROP COLUMN run_id")
        con.execute("ALTER TABLE _claims_due DROP COLUMN decision")
    due = [r[0] for r in con.execute(
        "SELECT family_id FROM _claims_due WHERE claim_type IS NOT NULL AND family_id NOT IN "
        "(SELECT family_id FROM claims.events WHERE event = 'claimed')").fetchall()]
    holds = find_holds(con, plan, as_of, due)
    con.execute("CREATE OR REPLACE TEMP TABLE _claims_held (family_id VARCHAR)")
    for family_id in sorted({h.family_id for h in holds}):
        con.execute("INSERT INTO _claims_held VALUES (?)", [family_id])
    run_id = _count(con, "SELECT nextval('claims.run_seq')")
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _claims_new AS
        SELECT d.family_id, d.claim_type, d.achieved_on, d.problems
        FROM _claims_due AS d
        WHERE d.claim_type IS NOT NULL
          AND d.family_id NOT IN (SELECT family_id FROM claims.events WHERE event = 'claimed')
          AND d.family_id NOT IN (SELECT family_id FROM _claims_held)
        """
    )
    con.execute(
        """
        INSERT INTO claims.assessments
        SELECT ?, d.family_id, d.attached_on, d.national_problems, d.problems_at_attachment,
               d.indicators_at_attachment, d.eligible, d.ssp_due, d.ssp_achieved_on, d.ce_due,
               d.ce_achieved_on, d.ce_person_ref, d.ce_route, d.blocking, d.later_indicators,
               d.claim_type, d.achieved_on, d.problems,
               CASE WHEN d.family_id IN (SELECT family_id FROM _claims_new) THEN 'claimed'
                    WHEN d.family_id IN (SELECT family_id FROM _claims_held)
                        THEN 'held_for_review'
                    WHEN d.family_id IN (SELECT family_id FROM claims.events
                                         WHERE event = 'claimed') THEN 'already_claimed'
                    WHEN d.eligible THEN 'not_due'
                    ELSE 'not_eligible' END
        FROM _claims_due AS d
        """,
        [run_id],
    )
    con.execute(
        """
        INSERT INTO claims.events (event_id, claim_id, family_id, event, run_id, plan, as_of,
                                   claim_type, achieved_on, problems, reason, recorded_by,
                                   recorded_at)
        SELECT nextval('claims.event_seq'), nextval('claims.claim_seq'), family_id, 'claimed',
               ?, ?, ?, claim_type, achieved_on, problems, NULL, ?, ?
        FROM (SELECT * FROM _claims_new ORDER BY family_id)
        """,
        [run_id, plan, as_of, RUN_BY, recorded_at],
    )
    record_holds(con, run_id, holds)
    _freeze_evidence(con, run_id, plan, as_of)

    counts = con.execute(
        """
        SELECT count(*), count(*) FILTER (WHERE eligible), count(*) FILTER (WHERE ssp_due),
               count(*) FILTER (WHERE ce_due), count(*) FILTER (WHERE ssp_due AND ce_due),
               count(*) FILTER (WHERE decision = 'claimed'),
               count(*) FILTER (WHERE decision = 'claimed' AND claim_type = 'SSP'),
               count(*) FILTER (WHERE decision = 'claimed' AND claim_type = 'CE'),
               count(*) FILTER (WHERE decision = 'already_claimed' AND claim_type IS NOT NULL),
               count(*) FILTER (WHERE decision = 'held_for_review')
        FROM claims.assessments WHERE run_id = ?
        """,
        [run_id],
    ).fetchone()
    assert counts is not None
    summary = ClaimsSummary(run_id, plan, as_of, *(int(c or 0) for c in counts))
    con.execute(
        "INSERT INTO claims.runs (run_id, plan, as_of, recorded_at, families, "
        "eligible_families, ssp_due, ce_due, both_due, new_claims, new_ssp, new_ce, "
        "already_claimed, famlink_version, held_for_review) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, plan, as_of, recorded_at, summary.families, summary.eligible_families,
         summary.ssp_due, summary.ce_due, summary.both_due, summary.new_claims,
         summary.new_ssp, summary.new_ce, summary.already_claimed, __version__,
         summary.held_for_review],
    )
    _snapshot_claims(con, run_id, as_of, recorded_at, plan)
    con.execute("DROP TABLE IF EXISTS _claims_new")
    con.execute("DROP TABLE IF EXISTS _claims_due")
    con.execute("DROP TABLE IF EXISTS _claims_held")
    return summary


def _freeze_evidence(con: duckdb.DuckDBPyConnection, run_id: int, plan: str,
                     as_of: date) -> None:
    """Copy what each new claim rests on out of the marts, which the next run rebuilds."""
    new = "(SELECT claim_id, family_id FROM claims.events WHERE event = 'claimed' AND run_id = ?)"
    if _table_exists(con, "marts.family_problems"):
        if _table_exists(con, "marts.problem_status"):
            status_join = (
                "LEFT JOIN (SELECT * FROM marts.problem_status WHERE plan = ? AND as_of = ?) AS s "
                "ON s.family_id = fp.family_id AND trim(s.indicator) = trim(fp.indicator)")
            status_cols = "s.status, s.achieved_on, CAST(s.outcome_id AS VARCHAR)"
            params: list[object] = [run_id, plan, as_of]
        else:
            status_join, status_cols = "", "NULL, NULL, NULL"
            params = [run_id]
        con.execute(
            f"""
            INSERT INTO claims.claim_indicators
            SELECT n.claim_id, fp.family_id, fp.indicator, fp.problem, fp.person_ref,
                   fp.identified_on, fp.attached_on, {status_cols}
            FROM {new} AS n JOIN marts.family_problems AS fp USING (family_id)
            {status_join}
            """,
            params,
        )
    if _table_exists(con, "marts.outcomes"):
        con.execute(
            f"""
            INSERT INTO claims.claim_outcomes
            SELECT n.claim_id, o.family_id, o.indicator, o.problem, o.person_ref,
                   CAST(o.outcome_id AS VARCHAR), o.status, o.achieved_on, o.rule
            FROM {new} AS n JOIN marts.outcomes AS o USING (family_id)
            WHERE o.plan = ? AND o.as_of = ?
            """,
            [run_id, plan, as_of],
        )
    if _table_exists(con, "marts.outcome_evidence"):
        con.execute(
            f"""
            INSERT INTO claims.claim_evidence
            SELECT n.claim_id, e.family_id, e.indicator, CAST(e.outcome_id AS VARCHAR),
                   e.extract, e.delivery_id, CAST(e.month AS VARCHAR),
                   CAST(e.record_key AS VARCHAR), e.person_ref, e.match_method,
                   e.match_probability, CAST(e.detail AS VARCHAR)
            FROM {new} AS n JOIN marts.outcome_evidence AS e USING (family_id)
            WHERE e.plan = ? AND CAST(e.as_of AS DATE) = ?
            """,
            [run_id, plan, as_of],
        )
    if _table_exists(con, "marts.ce_status"):
        con.execute(
            f"""
            INSERT INTO claims.claim_ce
            SELECT n.claim_id, c.family_id, c.person_ref, c.route, c.off_benefit_on,
                   c.qualifies_on, c.status
            FROM {new} AS n JOIN marts.ce_status AS c USING (family_id)
            WHERE c.plan = ? AND c.as_of = ?
            """,
            [run_id, plan, as_of],
        )


def _snapshot_claims(con: duckdb.DuckDBPyConnection, run_id: int, as_of: date,
                     recorded_at: datetime, plan: str | None = None) -> None:
    """Keep each new claim's whole audit pack as built now (links, rule findings, windows).

    ``famlink explain`` shows this copy for the claim, whatever later runs do to
    the linkage or the marts, and says where the current data differ.
    The claimed families' slice of the county-sized relations is cut once
    (``pack_scope``), each of a pack's queries is run once for all the claims, and
    each pack is assembled from those rows, not from the county.
    """
    from famlink.claims.explain import build_pack, drop_pack_scope, pack_scope, pack_to_json

    claims = con.execute("SELECT claim_id, family_id FROM claims.events WHERE event = 'claimed' "
                         "AND run_id = ? ORDER BY family_id", [run_id]).fetchall()
    if not claims:
        return
    scope = pack_scope(con, [family_id for _, family_id in claims], plan, as_of)
    try:
        rows = [[claim_id, family_id, run_id, recorded_at, __version__,
                 pack_to_json(build_pack(con, family_id, as_of, use_snapshot=False,
                                         scope=scope))]
                for claim_id, family_id in claims]
    finally:
        drop_pack_scope(con, scope)
    if rows:  # one statement: executemany costs a statement per claim
        con.execute(
            "INSERT INTO claims.claim_snapshots SELECT unnest($claim_id), unnest($family_id), "
            "$run_id, $recorded_at, $version, unnest($pack)",
            {"claim_id": [r[0] for r in rows], "family_id": [r[1] for r in rows],
             "run_id": run_id, "recorded_at": recorded_at, "version": __version__,
             "pack": [r[5] for r in rows]})


class WithdrawalError(ValueError):
    """The family has no claim that can be withdrawn."""


def withdraw_claim_in(con: duckdb.DuckDBPyConnection, family_id: str, reason: str,
                      by: str) -> int:
    """Append a 'withdrawn' event for the family's live claim; returns the claim id."""
    if not reason or not reason.strip():
        raise WithdrawalError("a withdrawal needs a reason (what the audit found)")
    if not by or not by.strip():
        raise WithdrawalError("a withdrawal needs the name of who withdrew it")
    ensure_claims_schema(con)
    row = con.execute(
        "SELECT claim_id, status FROM claims.ledger WHERE family_id = ?", [family_id]
    ).fetchone()
    if row is None:
        raise WithdrawalError(f"family {family_id} has no claim in the ledger")
    claim_id, status = row
    if status == "withdrawn":
        raise WithdrawalError(f"the claim for family {family_id} is already withdrawn")
    con.execute(
        """
        INSERT INTO claims.events (event_id, claim_id, family_id, event, run_id, plan, as_of,
                                   claim_type, achieved_on, problems, reason, recorded_by,
                                   recorded_at)
        SELECT nextval('claims.event_seq'), claim_id, family_id, 'withdrawn', run_id, plan,
               as_of, claim_type, achieved_on, problems, ?, ?, ?
        FROM claims.events WHERE claim_id = ? AND event = 'claimed'
        """,
        [reason.strip(), by.strip(), datetime.now().replace(microsecond=0), claim_id],
    )
    return int(claim_id)


def withdraw_claim(warehouse: Path, family_id: str, reason: str, by: str) -> None:
    """Withdraw a claim audit found invalid; the family stays claimed-once in the ledger.

    Written through ``build_then_publish`` so readers never see a half-written
    file and a failure leaves the published warehouse as it was.
    """
    from famlink.warehouse import build_then_publish

    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist")
    with build_then_publish(warehouse) as con:
        withdraw_claim_in(con, family_id, reason, by)
