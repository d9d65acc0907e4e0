"""Collect every person-bearing staging extract into ``linkage.person_records``.

Which column is each source's own person reference, and which columns make a
record's key, is data (``EXTRACTS``) rather than code: a new extract is one
more entry.
"""

from __future__ import annotations

import duckdb
from pydantic import BaseModel

from matchers.standardise import install_standardise_macros, standardise_sql

PERSON_COLUMNS = (
    "first_name", "middle_names", "last_name", "dob", "sex", "postcode", "upn", "nhs_number",
    "ni_number",
)


class ExtractSpec(BaseModel):
    """How one extract names its people."""

    system: str
    person_ref: str
    key: list[str]


EXTRACTS: dict[str, ExtractSpec] = {
    "cohort_members": ExtractSpec(system="cohort", person_ref="person_ref", key=["person_ref"]),
    "yot_offences": ExtractSpec(system="yot", person_ref="yot_person_id", key=["offence_id"]),
    "police_nominals": ExtractSpec(
        system="police", person_ref="nominal_id", key=["incident_ref", "nominal_id"]
    ),
    "school_attendance": ExtractSpec(
        system="school", person_ref="upn", key=["upn", "academic_year", "term"]
    ),
    "school_exclusions": ExtractSpec(
        system="school", person_ref="upn", key=["upn", "start_date", "category"]
    ),
    "dwp_benefits": ExtractSpec(
        system="dwp", person_ref="match_ref", key=["match_ref", "benefit", "start_date"]
    ),
    "dwp_employment": ExtractSpec(
        system="dwp", person_ref="match_ref", key=["match_ref", "employer_ref", "start_date"]
    ),
    "social_care_episodes": ExtractSpec(
        system="social_care", person_ref="child_id", key=["episode_id"]
    ),
    "social_care_missing": ExtractSpec(
        system="social_care", person_ref="child_id", key=["missing_id"]
    ),
}


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
    ]


def raw_person_sql(con: duckdb.DuckDBPyConnection, schema: str = "staging") -> str | None:
    """UNION ALL of the person columns of every extract present in ``schema``."""
    parts = []
    has_addresses = bool(_columns(con, schema, "cohort_addresses"))
    for name, spec in EXTRACTS.items():
        cols = _columns(con, schema, name)
        if not cols:
            continue

        def col(c: str, cols: list[str] = cols) -> str:
            return f"CAST(x.{c} AS VARCHAR)" if c in cols else "CAST(NULL AS VARCHAR)"

        key = " || '|' || ".join(f"coalesce(CAST(x.{k} AS VARCHAR), '')" for k in spec.key)
        pref = f"CAST(x.{spec.person_ref} AS VARCHAR)"
        if spec.system == "dwp":
            # DWP's person is the returned one: the reference sent plus the NI found.
            pref = f"{pref} || '|' || coalesce(fl_ni({col('ni_number')}), '')"
        dob = "x.dob" if "dob" in cols else "CAST(NULL AS DATE)"
        postcode, address, family = col("postcode"), "CAST(NULL AS VARCHAR)", "NULL"
        join = ""
        if name == "cohort_members":
            family = "x.family_id"
            if has_addresses:
                join = (
                    f"LEFT JOIN (SELECT family_id, arg_max(postcode, coalesce(to_date, "
                    f"DATE '9999-12-31')) AS pc, arg_max(address_line1, coalesce(to_date, "
                    f"DATE '9999-12-31')) AS a1, list(DISTINCT fl_postcode(postcode)) AS pcs "
                    f"FROM {schema}.cohort_addresses GROUP BY family_id) ca "
                    f"ON ca.family_id = x.family_id"
                )
                postcode, address = "ca.pc", "ca.a1"
        parts.append(
            f"""SELECT '{name}' || ':' || {key} AS record_id, '{name}' AS extract,
                {key} AS record_key, '{spec.system}' AS source_system, {pref} AS source_person_id,
                {col('first_name')} AS first_name, {col('middle_names')} AS middle_names,
                {col('last_name')} AS last_name, CAST({dob} AS DATE) AS dob, {col('sex')} AS sex,
                {postcode} AS postcode, {address} AS address, {col('upn')} AS upn,
                {col('nhs_number')} AS nhs_number, {col('ni_number')} AS ni_number,
                CAST({family} AS VARCHAR) AS family_id,
                {"ca.pcs" if join else "CAST(NULL AS VARCHAR[])"} AS history_postcodes
            FROM {schema}.{name} x {join}"""
        )
    return "\nUNION ALL\n".join(parts) if parts else None


def build_person_records(con: duckdb.DuckDBPyConnection, schema: str = "staging") -> int:
    """Create ``linkage.person_records``; returns its row count."""
    install_standardise_macros(con)
    con.execute("CREATE SCHEMA IF NOT EXISTS linkage")
    raw = raw_person_sql(con, schema)
    if raw is None:
        con.execute(
            "CREATE OR REPLACE TABLE linkage.person_records (record_id VARCHAR PRIMARY KEY, "
            "extract VARCHAR, record_key VARCHAR, source_system VARCHAR, source_person_id VARCHAR,"
            " first_name VARCHAR, middle_names VARCHAR, last_name VARCHAR, dob DATE, sex VARCHAR,"
            " postcode VARCHAR, upn VARCHAR, nhs_number VARCHAR, ni_number VARCHAR)"
        )
        return 0
    con.execute(f"CREATE OR REPLACE TEMP TABLE _fl_raw_people AS {raw}")
    con.execute(
        f"""CREATE OR REPLACE TABLE linkage.person_records AS
        SELECT * FROM ({standardise_sql('_fl_raw_people')})
        QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY record_id) = 1"""
    )
    con.execute("DROP TABLE _fl_raw_people")
    return con.execute("SELECT count(*) FROM linkage.person_records").fetchall()[0][0]
