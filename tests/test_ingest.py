"""Ingest: the contract's rules, row conservation, re-runs and fatal faults."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import write_delivery

from famlink.ingest.reading import FatalExtractError
from famlink.pipeline import RunRequest, build_staging, ingest_extracts
from famlink.warehouse import build_then_publish

MEMBER = {"person_ref": "P1", "family_id": "F1", "role": "parent_carer", "first_name": "Ann",
          "last_name": "Smith", "dob": "01/02/1985", "sex": "F"}


def ingest(drop: Path, warehouse: Path, as_of: date = date(2024, 3, 31),
           accept_shrink: tuple[str, ...] = ()):
    request = RunRequest(extracts=drop, warehouse=warehouse, plan="countywide", as_of=as_of,
                         accept_shrink=accept_shrink)
    with build_then_publish(warehouse) as con:
        summary = ingest_extracts(con, request)
        build_staging(con, request)
    return summary


def query(warehouse: Path, sql: str, as_of_month: str | None = None) -> list[tuple]:
    """``as_of_month``: the staging views as a run at that month would show them (the
    month they read from meta.run_parameters, changed in a transaction rolled back)."""
    con = duckdb.connect(str(warehouse), read_only=not as_of_month)
    try:
        if not as_of_month:
            return con.execute(sql).fetchall()
        con.execute("BEGIN")
        con.execute("UPDATE meta.run_parameters SET as_of_month = ?", [as_of_month])
        try:
            return con.execute(sql).fetchall()
        finally:
            con.execute("ROLLBACK")
    finally:
        con.close()


def rejects(warehouse: Path) -> list[tuple]:
    return query(warehouse, 'SELECT file, row_number, "column", severity, reason '
                            "FROM meta.rejects ORDER BY file, row_number, \"column\"")


def test_bad_rows_are_rejected_with_row_column_and_reason(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-01", "cohort_members.csv", [
        MEMBER,
        {**MEMBER, "person_ref": "P2", "dob": "31/02/1985"},           # not a date
        {**MEMBER, "person_ref": "P3", "role": "uncle"},               # not in the enum
        {**MEMBER, "person_ref": "P4", "first_name": ""},              # required missing
        {**MEMBER, "person_ref": "P1", "first_name": "Dup"},           # duplicate key
    ])
    summary = ingest(drop, wh)
    (delivery,) = summary.loaded
    assert (delivery.rows_read, delivery.rows_loaded, delivery.rows_rejected) == (5, 1, 4)
    got = [(r[1], r[2]) for r in rejects(wh)]
    assert got == [(2, "dob"), (3, "role"), (4, "first_name"), (5, "")]
    assert "DD/MM/YYYY" in rejects(wh)[0][4]
    assert "same key as row 1" in rejects(wh)[3][4]


def test_wrong_column_count_is_a_whole_row_fault(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    path = write_delivery(drop, "2024-01", "cohort_families.csv",
                          [{"family_id": "F1", "attached_on": "01/01/2024"}])
    path.write_text(path.read_text() + "F2,01/01/2024\nF3,02/01/2024,,\n")
    summary = ingest(drop, wh)
    (d,) = summary.loaded
    assert (d.rows_read, d.rows_loaded, d.rows_rejected) == (3, 2, 1)
    assert rejects(wh)[0][:3] == ("cohort_families.csv", 2, "")
    assert "expected 4, found 2" in rejects(wh)[0][4]


def test_invalid_identifiers_are_flagged_and_kept_as_missing(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-01", "cohort_members.csv", [
        {**MEMBER, "upn": "B123456789012", "nhs_number": "943 476 5918", "ni_number": "QQ123456C"},
        {**MEMBER, "person_ref": "P2", "nhs_number": "943 476 5919", "ni_number": "ab 12 34 56 c"},
    ])
    summary = ingest(drop, wh)
    assert summary.loaded[0].rows_loaded == 2
    assert summary.loaded[0].values_flagged == 3
    flagged = [(r[1], r[2], r[3]) for r in rejects(wh)]
    assert flagged == [(1, "nhs_number", "flagged"), (1, "ni_number", "flagged"),
                       (1, "upn", "flagged")]
    rows = query(wh, "SELECT person_ref, upn, nhs_number, ni_number FROM raw.cohort_members "
                     "ORDER BY person_ref")
    assert rows == [("P1", None, None, None), ("P2", None, "9434765919", "AB123456C")]


def test_bom_crlf_and_accented_names_load_intact(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    names = [("Zoë", "O'Brien"), ("Siobhán", "Ní Bhriain"), ("José-María", "D'Souza")]
    write_delivery(drop, "2024-01", "cohort_members.csv",
                   [{**MEMBER, "person_ref": f"P{i}", "first_name": f, "last_name": s}
                    for i, (f, s) in enumerate(names)], bom=True, crlf=True)
    summary = ingest(drop, wh)
    assert summary.loaded[0].rows_rejected == 0
    got = query(wh, "SELECT first_name, last_name FROM raw.cohort_members ORDER BY person_ref")
    assert got == names


def test_empty_and_missing_files(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-01", "cohort_members.csv", [MEMBER])
    (drop / "2024-01" / "police_incidents.csv").write_bytes(b"")     # 0 bytes
    write_delivery(drop, "2024-01", "yot_offences.csv", [])           # header only
    summary = ingest(drop, wh)
    status = {d.file: (d.status, d.rows_read) for d in summary.deliveries}
    assert status["police_incidents.csv"] == ("empty", 0)
    assert status["yot_offences.csv"] == ("loaded", 0)
    assert "school_attendance.csv" not in status                      # not delivered: fine
    assert query(wh, "SELECT count(*) FROM staging.school_attendance") == [(0,)]


def test_rerun_loads_nothing_twice(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-01", "cohort_members.csv", [MEMBER])
    ingest(drop, wh)
    again = ingest(drop, wh)
    assert [d.status for d in again.deliveries] == ["already_loaded"]
    assert query(wh, "SELECT count(*) FROM raw.cohort_members") == [(1,)]
    # The same content delivered again next month is the same delivery.
    write_delivery(drop, "2024-02", "cohort_members.csv", [MEMBER])
    third = ingest(drop, wh)
    assert [d.status for d in third.deliveries] == ["already_loaded", "already_loaded"]


def test_fatal_header_leaves_warehouse_byte_for_byte(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-01", "cohort_members.csv", [MEMBER])
    ingest(drop, wh, date(2024, 1, 31))
    before = hashlib.sha256(wh.read_bytes()).hexdigest()
    write_delivery(drop, "2024-02", "cohort_families.csv",
                   [{"family_id": "F1", "attached_on": "01/01/2024"}])
    write_delivery(drop, "2024-02", "cohort_members.csv", [MEMBER],
                   header=["person_ref", "family", "role"])
    with pytest.raises(FatalExtractError) as caught:
        ingest(drop, wh, date(2024, 2, 29))
    assert caught.value.path.name == "cohort_members.csv"
    assert "missing column(s)" in caught.value.fault and "family_id" in caught.value.fault
    assert hashlib.sha256(wh.read_bytes()).hexdigest() == before
    assert not Path(str(wh) + ".building").exists()
    assert query(wh, "SELECT count(*) FROM meta.deliveries") == [(1,)]


def test_columns_in_another_order_are_mapped_by_name(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-01", "cohort_families.csv",
                   [{"family_id": "F1", "attached_on": "05/01/2024"}],
                   header=["attached_on", "family_id", "case_closed_on", "lead_worker"])
    ingest(drop, wh)
    assert query(wh, "SELECT family_id, attached_on FROM raw.cohort_families") == [
        ("F1", date(2024, 1, 5))]


def test_snapshot_semantics_by_month(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-01", "cohort_members.csv",
                   [MEMBER, {**MEMBER, "person_ref": "P2"}])
    write_delivery(drop, "2024-03", "cohort_members.csv", [{**MEMBER, "last_name": "Jones"}])
    ingest(drop, wh, accept_shrink=("2024-03/cohort_members.csv",))   # half the keys go
    sql = "SELECT person_ref, last_name FROM staging.cohort_members ORDER BY 1"
    assert query(wh, sql, "2024-02") == [("P1", "Smith"), ("P2", "Smith")]
    assert query(wh, sql, "2024-03") == [("P1", "Jones")]              # P2 deleted
    assert query(wh, sql) == [("P1", "Jones")]                          # unset: latest


def test_delta_corrections_and_deletions(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    off = {"offence_id": "O1", "yot_person_id": "Y1", "first_name": "Jo", "last_name": "Bloggs",
           "dob": "01/01/2008", "offence_date": "01/01/2024", "offence_category": "theft",
           "gravity_score": "3"}
    write_delivery(drop, "2024-01", "yot_offences.csv", [off, {**off, "offence_id": "O2"}])
    write_delivery(drop, "2024-02", "yot_offences.csv", [
        {**off, "gravity_score": "5"},                                  # correction
        {"offence_id": "O2", "record_status": "D"},                     # deletion: key only
    ])
    summary = ingest(drop, wh)
    assert sum(d.rows_rejected for d in summary.deliveries) == 0
    sql = "SELECT offence_id, gravity_score FROM staging.yot_offences ORDER BY 1"
    assert query(wh, sql, "2024-01") == [("O1", 3), ("O2", 3)]
    assert query(wh, sql, "2024-02") == [("O1", 5)]


def test_months_after_as_of_are_not_loaded(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-01", "cohort_members.csv", [MEMBER])
    write_delivery(drop, "2024-04", "cohort_members.csv", [{**MEMBER, "last_name": "Later"}])
    summary = ingest(drop, wh, date(2024, 3, 31))
    assert [d.month for d in summary.deliveries] == ["2024-01"]


def test_mixed_encodings_refuse_the_whole_file(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    path = write_delivery(drop, "2024-01", "cohort_families.csv",
                          [{"family_id": "F1", "attached_on": "01/01/2024", "lead_worker": "Zoë"}])
    path.write_bytes(path.read_bytes() + b"F2,01/01/2024,Zo\xeb,\n")   # UTF-8 and cp1252
    with pytest.raises(FatalExtractError) as caught:
        ingest(drop, wh)
    assert caught.value.path.name == "cohort_families.csv"
    assert "mixes UTF-8" in caught.value.fault and "refused as a whole" in caught.value.fault
    assert not wh.exists()


def test_bytes_neither_utf8_nor_cp1252_refuse_the_file(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    path = write_delivery(drop, "2024-01", "cohort_families.csv",
                          [{"family_id": "F1", "attached_on": "01/01/2024"}])
    path.write_bytes(path.read_bytes() + b"F2,01/01/2024,\x81\x9d,\n")
    with pytest.raises(FatalExtractError, match="neither UTF-8 nor Windows-1252"):
        ingest(drop, wh)


@pytest.mark.parametrize("body", [
    b"F1,01/01/2024,\"Ann\nSmith\",\r\nF2,02/01/2024,,\r\n\r\n",      # newline in a quoted value
    b"\xef\xbb\xbffamily_id,attached_on,lead_worker,case_closed_on\nF1,01/01/2024,,\n\nF2,,,\n",
    b"F1,01/01/2024,\"O'Brien, Zo\xc3\xab\",\nF2,02/01/2024,x,y\n",
])
def test_fast_and_exact_readers_agree(tmp_path: Path, body: bytes) -> None:
    from famlink.contract import load_contract
    from famlink.ingest.reading import read_delivery

    header = b"family_id,attached_on,lead_worker,case_closed_on\n"
    path = tmp_path / "cohort_families.csv"
    path.write_bytes(body if body.startswith(b"\xef\xbb\xbf") else header + body)
    spec = load_contract().extract("cohort_families")
    fast, exact = read_delivery(path, spec), read_delivery(path, spec, exact=True)
    assert fast.table.to_pylist() == exact.table.to_pylist()
    assert fast.rows_read == exact.rows_read
