"""Hand-built fixtures for the outcome-rule tests: a tiny warehouse in DuckDB.

The staging and linkage tables are created from the extract contract (the
same columns and types staging produces), and small helpers add one family,
one offence, one attendance term ... at a time, so that each test states only
the facts that matter to the outcome line it checks.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import duckdb

from famlink.contract import load_contract
from rules.engine import evaluate_outcomes

_TYPES = {"date": "DATE", "timestamp": "TIMESTAMP", "integer": "BIGINT", "decimal": "DOUBLE"}
_LINEAGE = "_delivery_id BIGINT, _month VARCHAR, _file VARCHAR, _row_number BIGINT"


def d(text: str) -> date:
    """A date from ISO text."""
    return date.fromisoformat(text)


class World:
    """A warehouse with empty staging and linkage tables and helpers to fill them."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        self._ids = itertools.count(1)
        self.con.execute("CREATE SCHEMA staging")
        self.con.execute("CREATE SCHEMA linkage")
        for spec in load_contract().files.values():
            cols = ", ".join(
                f"{name} {_TYPES.get(col.type, 'VARCHAR')}" for name, col in spec.columns.items()
            )
            self.con.execute(f"CREATE TABLE staging.{spec.name} ({cols}, {_LINEAGE})")
        self.con.execute(
            "CREATE TABLE linkage.record_links (extract VARCHAR, record_key VARCHAR, "
            "record_id VARCHAR, person_id VARCHAR, person_ref VARCHAR, match_method VARCHAR, "
            "match_probability DOUBLE, matched_to_record_id VARCHAR)"
        )
        self.con.execute(
            "CREATE TABLE linkage.household_links (incident_ref VARCHAR, family_id VARCHAR, "
            "match_method VARCHAR, address_from DATE, address_to DATE)"
        )

    # ------------------------------------------------------------ plumbing
    def _insert(self, table: str, **values: object) -> None:
        values.setdefault("_delivery_id", 1)
        values.setdefault("_month", "2024-01")
        values.setdefault("_file", f"{table}.csv")
        values.setdefault("_row_number", next(self._ids))
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.con.execute(
            f"INSERT INTO staging.{table} ({cols}) VALUES ({marks})", list(values.values())
        )

    def link(self, extract: str, key: str, person_ref: str | None, prob: float = 0.99) -> None:
        """A linkage result for one source record."""
        self.con.execute(
            "INSERT INTO linkage.record_links VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [extract, key, key, person_ref, person_ref, "test", prob, None],
        )

    def nid(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):05d}"

    # ------------------------------------------------------------ cohort
    def family(
        self, fid: str, attached_on: str, *, members: tuple[tuple[str, str, str], ...] = (),
    ) -> None:
        """A family; members are (person_ref, role, dob)."""
        self._insert("cohort_families", family_id=fid, attached_on=d(attached_on))
        for ref, role, dob in members:
            self.person(fid, ref, role, dob)

    def person(self, fid: str, ref: str, role: str, dob: str) -> None:
        self._insert(
            "cohort_members", person_ref=ref, family_id=fid, role=role, first_name="A",
            last_name="B", dob=d(dob),
        )
        self.link("cohort_members", ref, ref, 1.0)

    def problem(self, fid: str, indicator: str, person_ref: str | None = None,
                identified_on: str | None = None) -> None:
        if identified_on is None:
            identified_on = self.con.execute(
                "SELECT attached_on FROM staging.cohort_families WHERE family_id = ?", [fid]
            ).fetchone()[0].isoformat()
        self._insert(
            "cohort_problems", family_id=fid, indicator=indicator, person_ref=person_ref,
            identified_on=d(identified_on),
        )

    def evidence(self, fid: str, kind: str, start: str, end: str | None = None, *,
                 person_ref: str | None = None, domain: str | None = None,
                 score: int | None = None, outcome_code: str | None = None) -> None:
        self._insert(
            "practitioner_evidence", evidence_id=self.nid("EV"), family_id=fid,
            person_ref=person_ref, kind=kind, domain=domain, score=score,
            outcome_code=outcome_code, start_date=d(start), end_date=d(end) if end else None,
        )

    # ------------------------------------------------------------ partner data
    def offence(self, ref: str, when: str, proven_on: str | None = "same", *, gravity: int = 3,
                substance_risk: int | None = None) -> None:
        oid = self.nid("OFF")
        proven = when if proven_on == "same" else proven_on
        self._insert(
            "yot_offences", offence_id=oid, yot_person_id="Y" + ref, first_name="A",
            last_name="B", dob=d("2008-01-01"), offence_date=d(when),
            outcome_date=d(proven) if proven else None, offence_category="theft",
            gravity_score=gravity, substance_risk=substance_risk,
        )
        self.link("yot_offences", oid, ref)

    def incident(self, fid: str | None, when: str, category: str = "ASB", *,
                 domestic: bool = False, nominal: tuple[str, str, str] | None = None) -> str:
        """A police incident at the family's address; nominal = (person_ref, role, outcome)."""
        ref = self.nid("INC")
        self._insert(
            "police_incidents", incident_ref=ref, reported_at=f"{when} 12:00:00",
            category=category, domestic_flag="Y" if domestic else None,
        )
        if fid is not None:
            self.con.execute(
                "INSERT INTO linkage.household_links VALUES (?, ?, 'uprn', NULL, NULL)", [ref, fid]
            )
        if nominal is not None:
            pref, role, outcome = nominal
            nom = self.nid("N")
            self._insert(
                "police_nominals", incident_ref=ref, nominal_id=nom, role=role, last_name="B",
                outcome=outcome,
            )
            self.link("police_nominals", f"{ref}|{nom}", pref)
        return ref

    def attendance(self, ref: str, year: str, term: str, pct: float, *, possible: int = 100,
                   upn: str | None = None) -> None:
        """One term's attendance at pct of possible sessions."""
        upn = upn or "U" + ref
        absent = round(possible * (1 - pct))
        self._insert(
            "school_attendance", upn=upn, first_name="A", last_name="B", dob=d("2012-01-01"),
            school_urn="100", phase="secondary", academic_year=year, term=term,
            possible_sessions=possible, authorised_absence=absent // 2,
            unauthorised_absence=absent - absent // 2,
        )
        self.link("school_attendance", f"{upn}|{year}|{term}", ref)

    def terms(self, ref: str, first: tuple[str, str], pcts: list[float]) -> None:
        """Consecutive terms from first=(year, term), one per attendance figure."""
        order = ["AUT", "SPR", "SUM"]
        year, term = first
        y, t = int(year[:4]), order.index(term)
        for pct in pcts:
            self.attendance(ref, f"{y}/{(y + 1) % 100:02d}", order[t], pct)
            t += 1
            if t == 3:
                y, t = y + 1, 0

    def exclusion(self, ref: str, start: str, category: str = "SUSPENSION") -> None:
        upn = "U" + ref
        self._insert(
            "school_exclusions", upn=upn, first_name="A", last_name="B", dob=d("2012-01-01"),
            school_urn="100", category=category, start_date=d(start),
            sessions=2 if category == "SUSPENSION" else None,
        )
        self.link("school_exclusions", f"{upn}|{start}|{category}", ref)

    def episode(self, ref: str, kind: str, start: str, end: str | None = None,
                reason: str | None = None) -> None:
        eid = self.nid("EP")
        self._insert(
            "social_care_episodes", episode_id=eid, child_id="C" + ref, first_name="A",
            last_name="B", episode_type=kind, start_date=d(start),
            end_date=d(end) if end else None, end_reason=reason or ("CLOSED_NFA" if end else None),
        )
        self.link("social_care_episodes", eid, ref)

    def missing(self, ref: str, when: str) -> None:
        mid = self.nid("MS")
        self._insert(
            "social_care_missing", missing_id=mid, child_id="C" + ref, first_name="A",
            last_name="B", missing_type="MISSING", start_at=f"{when} 20:00:00",
        )
        self.link("social_care_missing", mid, ref)

    def benefit(self, ref: str, benefit: str, start: str, end: str | None = None, *,
                regime: str | None = None, linked_to: str | None = "self") -> None:
        """A DWP benefit spell returned under match_ref=ref; linked_to=None: not verified."""
        self._insert(
            "dwp_benefits", match_ref=ref, first_name="A", last_name="B", dob=d("1985-01-01"),
            benefit=benefit, uc_regime=regime, start_date=d(start),
            end_date=d(end) if end else None,
        )
        owner = ref if linked_to == "self" else linked_to
        self.link("dwp_benefits", f"{ref}|{benefit}|{start}", owner)

    def job(self, ref: str, start: str, end: str | None = None) -> None:
        emp = self.nid("EMP")
        self._insert(
            "dwp_employment", match_ref=ref, employer_ref=emp, start_date=d(start),
            end_date=d(end) if end else None, monthly_earnings=1500.0,
        )
        self.link("dwp_employment", f"{ref}|{emp}|{start}", ref)

    # ------------------------------------------------------------ deliveries
    def deliveries(self, first: str, last: str, *, missing: dict[str, list[str]] | None = None,
                   empty: dict[str, list[str]] | None = None) -> None:
        """meta.deliveries: every extract delivered each month from first to last (YYYY-MM),
        except the months listed per file in missing (none) or empty (a zero-byte file)."""
        self.con.execute(
            "CREATE SCHEMA IF NOT EXISTS meta; CREATE TABLE IF NOT EXISTS meta.deliveries ("
            "delivery_id BIGINT, load_id BIGINT, month VARCHAR, file VARCHAR, extract VARCHAR, "
            "sha256 VARCHAR, status VARCHAR, rows_read BIGINT, rows_loaded BIGINT, "
            "rows_rejected BIGINT, values_flagged BIGINT, loaded_at TIMESTAMP)")
        missing, empty = missing or {}, empty or {}
        y, m = int(first[:4]), int(first[5:])
        while f"{y:04d}-{m:02d}" <= last:
            month = f"{y:04d}-{m:02d}"
            for spec in load_contract().files.values():
                if month in missing.get(spec.file, []):
                    continue
                status = "empty" if month in empty.get(spec.file, []) else "loaded"
                self.con.execute(
                    "INSERT INTO meta.deliveries VALUES (?, 1, ?, ?, ?, 'x', ?, 0, 0, 0, 0, NULL)",
                    [next(self._ids), month, spec.file, spec.name, status])
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)

    # ------------------------------------------------------------ running
    def run(self, plan: str, as_of: str) -> dict[tuple[str, str, str], tuple[str, date | None]]:
        """Evaluate; {(family, indicator, outcome_id): (status, achieved_on)}."""
        evaluate_outcomes(self.con, plan, d(as_of))
        rows = self.con.execute(
            "SELECT family_id, indicator, outcome_id, status, achieved_on FROM marts.outcomes"
        ).fetchall()
        return {(f, i, o): (s, a) for f, i, o, s, a in rows}

    def status(self, plan: str, as_of: str, fid: str, indicator: str, outcome_id: str) -> str:
        return self.run(plan, as_of)[(fid, indicator, outcome_id)][0]


def add_days(day: str, n: int) -> str:
    return (d(day) + timedelta(days=n)).isoformat()
