"""What the faster ingest gave up must still hold: the contract suite, file order, sizing."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import write_delivery

from expectations import SEVERITIES, validate_delivery
from famlink.contract import load_contract
from famlink.pipeline import RunRequest, ingest_extracts
from famlink.warehouse import MEMORY_LIMIT_ENV, build_then_publish, connect, machine_settings
from matchers.identifiers import upn_check_letter

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
MEMBER = {"person_ref": "P1", "family_id": "F1", "role": "parent_carer", "first_name": "Ann",
          "last_name": "Smith", "dob": "01/02/1985", "sex": "F"}


def test_contract_suite_holds_on_what_ingest_loaded(tmp_path: Path) -> None:
    """A run validates only the warnings; the contract's expectations, run here over
    every raw table, find nothing ingest let through."""
    drop = tmp_path / "drop"
    for month in ("2023-01", "2023-02"):
        shutil.copytree(SAMPLE / month, drop / month)
    warehouse = tmp_path / "w.duckdb"
    request = RunRequest(extracts=drop, warehouse=warehouse, plan="countywide",
                         as_of=date(2023, 2, 28))
    with build_then_publish(warehouse) as con:
        ingest_extracts(con, request)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        severities = {r[0] for r in con.execute(
            "SELECT DISTINCT severity FROM meta.expectation_results").fetchall()}
        checked = 0
        for spec in load_contract().files.values():
            columns = ", ".join(f'"{c}"' for c in spec.column_names)
            batch = con.sql(f"SELECT {columns}, _delivery_id FROM raw.{spec.name}").to_arrow_table()
            if batch.num_rows == 0:
                continue
            result = validate_delivery(spec.name, batch, as_of=request.as_of,
                                       severities=SEVERITIES)
            assert result.contract_failures == [], [o.describe() for o in
                                                     result.contract_failures]
            checked += 1
    finally:
        con.close()
    assert severities == {"warning"}
    assert checked >= 10


def test_rows_load_in_file_order_and_repeats_are_rejected(tmp_path: Path) -> None:
    """Without the ORDER BY, raw still holds a delivery in file order; every repeat of a
    key after its first row is rejected naming that row, and nothing is lost."""
    rows = [{**MEMBER, "person_ref": f"P{i:05d}"} for i in range(5000)]
    rows[4000]["person_ref"] = rows[10]["person_ref"]
    rows[4500]["person_ref"] = rows[10]["person_ref"]
    rows[20]["dob"] = "31/02/1985"
    write_delivery(tmp_path / "drop", "2024-01", "cohort_members.csv", rows)
    warehouse = tmp_path / "w.duckdb"
    request = RunRequest(extracts=tmp_path / "drop", warehouse=warehouse, plan="countywide",
                         as_of=date(2024, 1, 31))
    with build_then_publish(warehouse) as con:
        ingest_extracts(con, request)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        order = [r[0] for r in con.execute(
            "SELECT _row_number FROM raw.cohort_members ORDER BY rowid").fetchall()]
        rejected = con.execute('SELECT row_number, "column", reason FROM meta.rejects '
                               "ORDER BY row_number").fetchall()
        counts = con.execute("SELECT rows_read, rows_loaded, rows_rejected "
                             "FROM meta.deliveries").fetchall()
    finally:
        con.close()
    assert order == sorted(order) and len(order) == 4997
    assert rejected == [(21, "dob", "not a valid date in the format DD/MM/YYYY"),
                        (4001, "", "duplicate key: same key as row 11"),
                        (4501, "", "duplicate key: same key as row 11")]
    assert counts == [(5000, 4997, 3)]


def test_duckdb_sized_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    settings = machine_settings()
    assert 1 <= int(settings["threads"]) and int(str(settings["memory_limit"])[:-2]) <= 2048
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "300MB")
    con = connect(":memory:")
    try:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        con.close()
    assert limit.startswith("286") or limit.startswith("300"), limit


def test_warnings_validated_in_parts_count_as_one(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The warnings run on bounded parts of a load (memory); their counts add up to one
    validation of the whole."""
    from famlink.ingest import loading

    drop = tmp_path / "drop"
    rows = [{**MEMBER, "person_ref": f"P{i}", "dob": "01/02/2030" if i % 6 == 0 else "01/02/1985"}
            for i in range(20)]                 # 4 born after the as-of: a warning, 4 times
    write_delivery(drop, "2023-01", "cohort_members.csv", rows)
    results = []
    for rows in (loading.VALIDATE_ROWS, 7):
        monkeypatch.setattr(loading, "VALIDATE_ROWS", rows)
        warehouse = tmp_path / f"w{rows}.duckdb"
        request = RunRequest(extracts=drop, warehouse=warehouse, plan="countywide",
                             as_of=date(2023, 1, 31))
        with build_then_publish(warehouse) as con:
            ingest_extracts(con, request)
        con = duckdb.connect(str(warehouse), read_only=True)
        results.append(con.execute(
            'SELECT extract, expectation, "column", success, unexpected_count, element_count '
            "FROM meta.expectation_results ORDER BY ALL").fetchall())
        con.close()
    assert results[0] == results[1]
    assert ("cohort_members", "expect_column_values_to_be_between", "dob", False, 4, 20) \
        in results[0]


def _ingested(drop: Path, warehouse: Path, as_of: date) -> duckdb.DuckDBPyConnection:
    """A new warehouse holding a drop folder's ingest, opened read-only."""
    request = RunRequest(extracts=drop, warehouse=warehouse, plan="countywide", as_of=as_of)
    with build_then_publish(warehouse) as con:
        ingest_extracts(con, request)
    return duckdb.connect(str(warehouse), read_only=True)


def test_warnings_on_distinct_values_count_as_every_row(tmp_path: Path) -> None:
    """A run validates each row-by-row warning once per distinct value with its count of
    rows: the outcomes are those of a validation of every loaded row."""
    drop = tmp_path / "drop"
    rows = []
    for i in range(60):
        rows.append({"family_id": f"F{i}", "address_line1": "1 High St", "postcode":
                     ["SS17 8AA", "NOT A PC", "ss178aa", "", "SS17 8AA"][i % 5], "uprn": "",
                     "from_date": ["01/01/2020", "01/01/1850", "01/01/2020"][i % 3],
                     "to_date": ["", "01/01/2019", "01/01/2021", "01/01/2090"][i % 4]})
    write_delivery(drop, "2023-01", "cohort_addresses.csv", rows)
    write_delivery(drop, "2023-02", "cohort_addresses.csv", rows[::-1][:55])
    con = _ingested(drop, tmp_path / "w.duckdb", date(2023, 2, 28))
    try:
        found = con.execute('SELECT expectation, "column", success, unexpected_count, '
                            "element_count, sample_unexpected FROM meta.expectation_results "
                            "ORDER BY ALL").fetchall()
        spec = load_contract().extract("cohort_addresses")
        columns = ", ".join(f'"{c}"' for c in spec.column_names)
        batch = con.sql(f"SELECT {columns}, _delivery_id FROM raw.cohort_addresses "
                        "ORDER BY rowid").to_arrow_table()
    finally:
        con.close()
    every_row = validate_delivery("cohort_addresses", batch, as_of=date(2023, 2, 28),
                                  severities=("warning",))
    expected = sorted((o.expectation_type, o.column, o.success, o.unexpected_count,
                       o.element_count, "; ".join(o.sample_unexpected))
                      for o in every_row.outcomes)
    assert batch.num_rows == 92          # empty postcodes are rejected
    assert found == expected
    assert sum(1 for row in found if not row[2]) == 4      # each warning fails somewhere


def test_repeated_keys_found_alike_by_columns_and_by_text(tmp_path: Path) -> None:
    """A key of typed columns (school attendance) is grouped by its columns, a key of two
    free-text parts by its '|'-joined text as before: 'I1|N', 'X' and 'I1', 'N|X' are
    one record name, so the second is a repeat; the attendance repeat differs from its
    first row only in a column outside the key."""
    drop = tmp_path / "drop"
    nominal = {"role": "VICTIM", "last_name": "Smith"}
    write_delivery(drop, "2024-01", "police_nominals.csv", [
        {**nominal, "incident_ref": "I1|N", "nominal_id": "X"},
        {**nominal, "incident_ref": "I1", "nominal_id": "N|X"},
        {**nominal, "incident_ref": "I1", "nominal_id": "N"}])
    pupil = {"upn": "A123456789012", "first_name": "Ann", "last_name": "Smith",
             "dob": "01/02/2012", "school_urn": "100001", "phase": "primary",
             "academic_year": "2023/24", "term": "AUT", "possible_sessions": "100",
             "authorised_absence": "1", "unauthorised_absence": "0"}
    upn = upn_check_letter("123456789012") + "123456789012"
    write_delivery(drop, "2024-01", "school_attendance.csv", [
        {**pupil, "upn": upn}, {**pupil, "upn": upn, "term": "SPR"},
        {**pupil, "upn": upn.lower(), "possible_sessions": "90"}])
    con = _ingested(drop, tmp_path / "w.duckdb", date(2024, 1, 31))
    try:
        rejected = con.execute('SELECT file, row_number, reason FROM meta.rejects '
                               "ORDER BY ALL").fetchall()
    finally:
        con.close()
    assert rejected == [("police_nominals.csv", 2, "duplicate key: same key as row 1"),
                        ("school_attendance.csv", 3, "duplicate key: same key as row 1")]
