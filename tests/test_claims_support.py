"""Fixture warehouse for the claims tests: the marts and linkage tables, built by hand.

The real marts come from other stages; these tests create them with the
columns the claims stage relies on, a few rows at a time, so each test states
exactly the situation it checks.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

PLAN = "countywide"

DDL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS linkage;
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE marts.family_problems (family_id VARCHAR, indicator VARCHAR, problem INTEGER,
    person_ref VARCHAR, identified_on DATE, attached_on DATE);
CREATE TABLE marts.outcomes (plan VARCHAR, as_of DATE, family_id VARCHAR, indicator VARCHAR,
    problem INTEGER, person_ref VARCHAR, outcome_id VARCHAR, status VARCHAR, achieved_on DATE,
    rule VARCHAR);
CREATE TABLE marts.problem_status (plan VARCHAR, as_of DATE, family_id VARCHAR,
    indicator VARCHAR, problem INTEGER, status VARCHAR, achieved_on DATE, outcome_id VARCHAR);
CREATE TABLE marts.outcome_evidence (plan VARCHAR, as_of DATE, family_id VARCHAR,
    indicator VARCHAR, outcome_id VARCHAR, extract VARCHAR, delivery_id BIGINT, month VARCHAR,
    record_key VARCHAR, person_ref VARCHAR, match_method VARCHAR, match_probability DOUBLE,
    detail VARCHAR);
CREATE TABLE marts.ce_status (plan VARCHAR, as_of DATE, family_id VARCHAR, person_ref VARCHAR,
    route VARCHAR, off_benefit_on DATE, qualifies_on DATE, status VARCHAR);
CREATE TABLE staging.cohort_families (family_id VARCHAR, attached_on DATE,
    lead_worker VARCHAR, case_closed_on DATE);
CREATE TABLE staging.cohort_members (person_ref VARCHAR, family_id VARCHAR, role VARCHAR,
    first_name VARCHAR, middle_names VARCHAR, last_name VARCHAR, dob DATE, sex VARCHAR,
    upn VARCHAR, nhs_number VARCHAR, ni_number VARCHAR);
CREATE TABLE linkage.record_links (extract VARCHAR, record_key VARCHAR, record_id BIGINT,
    person_id BIGINT, person_ref VARCHAR, match_method VARCHAR, match_probability DOUBLE,
    matched_to_record_id BIGINT);
CREATE TABLE linkage.person_records (record_id BIGINT, extract VARCHAR, record_key VARCHAR,
    source_person_id VARCHAR, first_name VARCHAR, middle_names VARCHAR, last_name VARCHAR,
    dob DATE, sex VARCHAR, postcode VARCHAR, upn VARCHAR, nhs_number VARCHAR,
    ni_number VARCHAR);
CREATE TABLE linkage.household_links (incident_ref VARCHAR, family_id VARCHAR,
    match_method VARCHAR, address_from DATE, address_to DATE);
CREATE TABLE IF NOT EXISTS meta.deliveries (delivery_id BIGINT, load_id BIGINT, month VARCHAR,
    file VARCHAR, extract VARCHAR, sha256 VARCHAR, status VARCHAR, rows_read BIGINT,
    rows_loaded BIGINT, rows_rejected BIGINT, values_flagged BIGINT, loaded_at TIMESTAMP);
"""


def d(text: str) -> date:
    return date.fromisoformat(text)


class Marts:
    """Writes fixture rows; one instance per warehouse connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, plan: str = PLAN) -> None:
        self.con = con
        self.plan = plan
        con.execute(DDL)

    def family(self, family_id: str, attached_on: str, indicators: dict[str, str | None],
               members: int = 2) -> None:
        """A cohort family with its identified indicators ({code: identified_on})."""
        self.con.execute("INSERT INTO staging.cohort_families VALUES (?, ?, 'Lead Worker', NULL)",
                         [family_id, d(attached_on)])
        for code, identified in indicators.items():
            self.con.execute(
                "INSERT INTO marts.family_problems VALUES (?, ?, ?, ?, ?, ?)",
                [family_id, code, int(code[0]), f"{family_id}-P1",
                 d(identified) if identified else d(attached_on), d(attached_on)])
        for i in range(1, members + 1):
            self.con.execute(
                "INSERT INTO staging.cohort_members VALUES (?, ?, ?, ?, NULL, ?, ?, ?, NULL, "
                "NULL, NULL)",
                [f"{family_id}-P{i}", family_id, "adult" if i == 1 else "child", f"Name{i}",
                 f"Fam{family_id}", date(1980 + 10 * (i > 1), 1, i), "F" if i % 2 else "M"])

    def status(self, as_of: str, family_id: str, indicator: str, status: str,
               achieved_on: str | None = None, evidence: int = 1) -> None:
        """An indicator's status at a run (problem_status + its outcome + evidence)."""
        oid = f"{family_id}-{indicator}-o1"
        ach = d(achieved_on) if achieved_on else None
        self.con.execute("INSERT INTO marts.problem_status VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [self.plan, d(as_of), family_id, indicator, int(indicator[0]), status,
                          ach, oid])
        self.con.execute(
            "INSERT INTO marts.outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [self.plan, d(as_of), family_id, indicator, int(indicator[0]), f"{family_id}-P1",
             oid, status, ach, f"rule for {indicator}: no incident for 6 months"])
        for k in range(evidence):
            self.con.execute(
                "INSERT INTO marts.outcome_evidence VALUES (?, ?, ?, ?, ?, 'police_incidents', "
                "1, '2024-01', ?, ?, 'nhs_number', 1.0, 'no incident since attachment')",
                [self.plan, d(as_of), family_id, indicator, oid, f"{family_id}-{indicator}-r{k}",
                 f"{family_id}-P1"])

    def achieved(self, as_of: str, family_id: str, dates: dict[str, str]) -> None:
        for indicator, on in dates.items():
            self.status(as_of, family_id, indicator, "achieved", on)

    def ce(self, as_of: str, family_id: str, qualifies_on: str | None,
           status: str = "achieved", off_benefit_on: str | None = None,
           person: str = "P1") -> None:
        self.con.execute(
            "INSERT INTO marts.ce_status VALUES (?, ?, ?, ?, 'JSA: 26 weeks', ?, ?, ?)",
            [self.plan, d(as_of), family_id, f"{family_id}-{person}",
             d(off_benefit_on) if off_benefit_on else None,
             d(qualifies_on) if qualifies_on else None, status])

    def links(self, family_id: str) -> None:
        """Two linked records for the family's first member: one by identifier, one fuzzy."""
        ref = f"{family_id}-P1"
        self.con.execute(
            "INSERT INTO linkage.record_links VALUES "
            "('police_nominals', ?, 11, 1, ?, 'nhs_number', 1.0, NULL), "
            "('dwp_benefits', ?, 12, 1, ?, 'probabilistic', 0.973, 11)",
            [f"{family_id}-nom", ref, f"{family_id}-dwp", ref])
        self.con.execute(
            "INSERT INTO linkage.person_records VALUES "
            "(11, 'police_nominals', ?, 'S1', 'Name1', NULL, 'Smith', DATE '1980-01-01', 'F', "
            "'AB1 2CD', NULL, '9434765919', NULL), "
            "(12, 'dwp_benefits', ?, 'S2', 'Nme1', NULL, 'Smyth', DATE '1980-01-01', 'F', "
            "'AB1 2CD', NULL, NULL, NULL)",
            [f"{family_id}-nom", f"{family_id}-dwp"])
        self.con.execute("INSERT INTO linkage.household_links VALUES (?, ?, 'uprn', NULL, NULL)",
                         [f"INC-{family_id}", family_id])
        self.con.execute(
            "INSERT INTO meta.deliveries VALUES (1, 1, '2024-01', 'police_incidents.csv', "
            "'police_incidents', 'abc123', 'loaded', 10, 10, 0, 0, TIMESTAMP '2024-02-01 09:00')"
        )

    def clear_run(self) -> None:
        """The next run rebuilds the per-run marts."""
        for t in ("outcomes", "problem_status", "outcome_evidence", "ce_status"):
            self.con.execute(f"DELETE FROM marts.{t}")


def new_warehouse(path: Path, plan: str = PLAN) -> tuple[duckdb.DuckDBPyConnection, Marts]:
    con = duckdb.connect(str(path))
    return con, Marts(con, plan)
