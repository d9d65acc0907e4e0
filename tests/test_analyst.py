"""The analyst layer holds no personal data, keys are stable per warehouse, query defaults to it."""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from safety_support import error_line, famlink

from famlink.analyst import QueryRefused, connect_analyst, refuse_outside_analyst
from famlink.pipeline import RunRequest
from flows.monthly import run_monthly_local

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
FIRST, SECOND = date(2023, 1, 31), date(2023, 2, 28)
REQUIRED_VIEWS = {"families", "people", "problems", "outcomes", "claims", "links", "rejects",
                  "deliveries"}
# Column names that would carry a name, a date of birth, an identifier or an address.
IDENTIFYING = re.compile(r"name|dob|birth|upn|nhs|ni_number|uprn|match_ref|person_ref|"
                         r"family_id|postcode|address|town|lead_worker|recorded_by|"
                         r"withdrawn_by|reason_text|^value$|sample_unexpected|_id$")
RUN_DATES = {"as_of", "recorded_at", "loaded_at"}     # when a run or load happened
ALLOWED_ID_COLUMNS = {"delivery_id", "load_id", "run_id", "outcome_id"}   # not about a person
# Staging columns whose values identify someone; none may appear in an analyst view.
STAGING_IDENTIFIERS = {
    "cohort_members": ["person_ref", "family_id", "first_name", "middle_names", "last_name",
                       "dob", "upn", "nhs_number", "ni_number"],
    "cohort_families": ["family_id", "lead_worker"],
    "cohort_addresses": ["address_line1", "address_line2", "postcode", "uprn"],
    "dwp_benefits": ["match_ref", "ni_number", "first_name", "last_name", "dob", "postcode"],
    "school_attendance": ["upn", "first_name", "last_name", "dob", "postcode"],
    "yot_offences": ["offence_id", "yot_person_id", "first_name", "last_name", "dob",
                     "postcode", "upn"],
    "police_nominals": ["nominal_id", "first_name", "last_name", "dob"],
    "police_incidents": ["incident_ref", "address_line1", "postcode", "uprn"],
    "social_care_episodes": ["episode_id", "child_id", "first_name", "last_name", "dob",
                             "nhs_number", "postcode"],
    "practitioner_evidence": ["evidence_id", "recorded_by"],
}


def _run(drop: Path, warehouse: Path, as_of: date) -> None:
    run_monthly_local(RunRequest(extracts=drop, warehouse=warehouse, plan="countywide",
                                 as_of=as_of))


def _keys(warehouse: Path) -> dict[str, set[str]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {"person": {k for (k,) in con.execute("SELECT person_key FROM analyst.people")
                           .fetchall()},
                "family": {k for (k,) in con.execute("SELECT family_key FROM analyst.families")
                           .fetchall()},
                "secret": {s for (s,) in con.execute("SELECT secret FROM meta.warehouse_secret")
                           .fetchall()}}
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Warehouse A run at two month-ends (keys noted after the first); B from the same drop."""
    root = tmp_path_factory.mktemp("analyst")
    drop = root / "drop"
    for month in ("2023-01", "2023-02"):
        shutil.copytree(SAMPLE / month, drop / month)
    a, b = root / "a.duckdb", root / "b.duckdb"
    _run(drop, a, FIRST)
    first_keys = _keys(a)
    _run(drop, a, SECOND)
    _run(drop, b, FIRST)
    return {"a": a, "b": b, "first_keys": first_keys}


def _analyst_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    return con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'analyst' ORDER BY 1, ordinal_position").fetchall()


def test_the_analyst_views_exist_and_have_rows(built: dict[str, Any]) -> None:
    con = duckdb.connect(str(built["a"]), read_only=True)
    views = {v for (v,) in con.execute("SELECT view_name FROM duckdb_views() "
                                       "WHERE schema_name = 'analyst'").fetchall()}
    assert REQUIRED_VIEWS <= views
    for view in ("families", "people", "problems", "outcomes", "links", "deliveries"):
        assert con.execute(f"SELECT count(*) FROM analyst.{view}").fetchone()[0] > 0, view
    members = con.execute("SELECT count(*) FROM staging.cohort_members").fetchone()[0]
    assert con.execute("SELECT count(*) FROM analyst.people").fetchone()[0] == members


def test_no_analyst_column_is_named_for_personal_data(built: dict[str, Any]) -> None:
    con = duckdb.connect(str(built["a"]), read_only=True)
    columns = _analyst_columns(con)
    bad = [f"{t}.{c}" for t, c, _ in columns
           if IDENTIFYING.search(c) and c not in ALLOWED_ID_COLUMNS]
    assert not bad, f"identifying columns in the analyst layer: {bad}"
    # dates only of runs and loads; events are months
    dated = {c for _, c, kind in columns if kind in ("DATE", "TIMESTAMP")}
    assert dated <= RUN_DATES, dated
    for table, column, _ in columns:
        if column.endswith("_key"):
            values = con.execute(f"SELECT DISTINCT {column} FROM analyst.{table} "
                                 f"WHERE {column} IS NOT NULL").fetchall()
            assert all(re.fullmatch(r"[0-9a-f]{16}", v) for (v,) in values), (table, column)


def test_no_staging_name_dob_or_identifier_appears_in_an_analyst_view(
        built: dict[str, Any]) -> None:
    con = duckdb.connect(str(built["a"]), read_only=True)
    secrets_of_staging: set[str] = set()
    for view, columns in STAGING_IDENTIFIERS.items():
        for column in columns:
            secrets_of_staging |= {str(v) for (v,) in con.execute(
                f"SELECT DISTINCT {column} FROM staging.{view} WHERE {column} IS NOT NULL")
                .fetchall()}
    assert len(secrets_of_staging) > 200
    identifiers = [s for s in secrets_of_staging if len(s) >= 6 and any(c.isdigit() for c in s)]
    found = []
    for table, column, _ in _analyst_columns(con):
        if column in RUN_DATES:
            continue
        cells = {str(v) for (v,) in con.execute(
            f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM analyst.{table} '
            f'WHERE "{column}" IS NOT NULL').fetchall()}
        if any(cell in secrets_of_staging or any(s in cell for s in identifiers)
               for cell in cells):
            found.append(f"analyst.{table}.{column}")
    assert not found, f"staging values in {found}"
    as_of = {d for (d,) in con.execute("SELECT DISTINCT as_of FROM analyst.outcomes").fetchall()}
    assert as_of == {SECOND}


def test_ages_are_bands_as_at_the_run(built: dict[str, Any]) -> None:
    con = duckdb.connect(str(built["a"]), read_only=True)
    bands = {b for (b,) in con.execute("SELECT DISTINCT age_band FROM analyst.people").fetchall()}
    assert bands <= {"0-4", "5-10", "11-15", "16-17", "18-24", "25-34", "35-49", "50+", None}
    assert len(bands - {None}) >= 4
    expected = con.execute("""
        SELECT count(*) FILTER (WHERE date_sub('year', dob, DATE '2023-02-28') BETWEEN 11 AND 15)
        FROM staging.cohort_members""").fetchone()[0]
    got = con.execute("SELECT count(*) FROM analyst.people WHERE age_band = '11-15'").fetchone()
    assert got[0] == expected


def test_keys_are_the_keyed_hash_stable_across_runs_of_one_warehouse(
        built: dict[str, Any]) -> None:
    later = _keys(built["a"])
    assert later["secret"] == built["first_keys"]["secret"] and len(later["secret"]) == 1
    assert built["first_keys"]["person"] and built["first_keys"]["person"] <= later["person"]
    assert built["first_keys"]["family"] <= later["family"]
    (secret,) = later["secret"]
    con = duckdb.connect(str(built["a"]), read_only=True)
    refs = [r for (r,) in con.execute("SELECT person_ref FROM staging.cohort_members").fetchall()]
    assert {hashlib.sha256((secret + r).encode()).hexdigest()[:16] for r in refs} == \
        later["person"]


def test_another_warehouse_gives_other_keys(built: dict[str, Any]) -> None:
    a, b = built["first_keys"], _keys(built["b"])
    assert a["secret"] != b["secret"]
    assert len(b["person"]) == len(a["person"]) > 0
    assert not a["person"] & b["person"] and not a["family"] & b["family"]


def test_query_refuses_staging_by_default_in_one_line_and_allows_it_identifiable(
        built: dict[str, Any]) -> None:
    refused = famlink("query", "FROM staging.cohort_members", "--warehouse", str(built["a"]))
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert error_line(refused).startswith("error: query refused: staging.cohort_members is "
                                          "outside the analyst layer")
    assert refused.stdout == ""
    allowed = famlink("query", "SELECT count(*) AS n FROM staging.cohort_members",
                      "--warehouse", str(built["a"]), "--identifiable")
    assert allowed.returncode == 0, allowed.stderr
    shown = famlink("query", "SELECT age_band, count(*) AS n FROM people GROUP BY ALL",
                    "--warehouse", str(built["a"]))
    assert shown.returncode == 0, shown.stderr
    assert "age_band" in shown.stdout and "35-49" in shown.stdout


BYPASSES = [
    "SELECT * FROM staging.cohort_members",
    "WITH x AS (FROM staging.cohort_members) FROM x",
    "FROM families WHERE family_key IN (SELECT family_id FROM marts.outcomes)",
    "FROM cohort_members",
    "SELECT * FROM query('FROM staging.cohort_members')",
    "SELECT * FROM query_table('staging.cohort_members')",
    "SELECT meta.pseudonym('P0000001')",
    "SELECT * FROM meta.warehouse_secret",
    "SET search_path = 'staging'; FROM cohort_members",
    "FROM a.staging.cohort_members",
    "SHOW TABLES",
    "PRAGMA show_tables",
]


def test_every_way_round_the_analyst_layer_is_refused(built: dict[str, Any]) -> None:
    con = connect_analyst(built["a"])
    try:
        for sql in BYPASSES:
            with pytest.raises(QueryRefused):
                refuse_outside_analyst(con, sql)
        refuse_outside_analyst(con, "WITH f AS (FROM families) SELECT count(*) FROM f "
                                    "JOIN analyst.people USING (family_key)")
    finally:
        con.close()
