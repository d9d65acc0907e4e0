"""Nothing wrong gets in: the ingest guards, tried as a careless or hostile user would.

Each case is real files in a drop folder and the command line (typer's runner,
or a second process where a hang or the whole run is the point).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import write_delivery
from typer.testing import CliRunner

from famlink.cli import app
from famlink.contract import load_contract
from famlink.ingest.guards import load_guards

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def member(i: int, **changes: str) -> dict[str, str]:
    row = {"person_ref": f"P{i:03d}", "family_id": f"FAM{i // 3:03d}", "role": "child",
           "first_name": "Ann", "last_name": "Smith", "dob": "01/02/2012"}
    return {**row, **changes}


def family(i: int) -> dict[str, str]:
    return {"family_id": f"FAM{i:03d}", "attached_on": "01/01/2024"}


def month_of_cohort(drop: Path, month: str, members: int) -> None:
    write_delivery(drop, month, "cohort_families.csv", [family(i) for i in range(4)])
    write_delivery(drop, month, "cohort_members.csv", [member(i) for i in range(members)])


def ingest(drop: Path, wh: Path, as_of: str, *extra: str):  # noqa: ANN201 - click Result
    return runner.invoke(app, ["ingest", "--extracts", str(drop), "--warehouse", str(wh),
                               "--as-of", as_of, *extra])


def famlink(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The command as a data officer types it, in a second process."""
    return subprocess.run([sys.executable, "-m", "famlink", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"})


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(wh: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def current_members(wh: Path) -> int:
    return query(wh, "SELECT count(*) FROM staging.cohort_members")[0][0]


def test_header_only_cohort_snapshot_refuses_the_run(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    month_of_cohort(drop, "2024-11", 12)
    assert ingest(drop, wh, "2024-11-30").exit_code == 0
    before = sha(wh)
    month_of_cohort(drop, "2024-12", 12)
    write_delivery(drop, "2024-12", "cohort_members.csv", [])         # header, no rows
    result = famlink("run", "--extracts", str(drop), "--warehouse", str(wh), "--plan",
                     "countywide", "--as-of", "2024-12-31", "--no-prefect")
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "2024-12/cohort_members.csv" in line and "header but no rows" in line
    assert "12 current keys" in line and "--accept-shrink 2024-12/cohort_members.csv" in line
    assert "Traceback" not in result.stderr
    assert sha(wh) == before                                          # no claim, nothing
    assert not Path(str(wh) + ".building").exists()
    assert current_members(wh) == 12


@pytest.mark.parametrize("cut", ["mid_row", "last_row_short"])
def test_file_cut_short_is_fatal_naming_the_file(tmp_path: Path, cut: str) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    month_of_cohort(drop, "2024-11", 12)
    assert ingest(drop, wh, "2024-11-30").exit_code == 0
    before = sha(wh)
    month_of_cohort(drop, "2024-12", 12)
    path = drop / "2024-12" / "cohort_members.csv"
    data = path.read_bytes()
    if cut == "mid_row":
        data = data[: len(data) * 2 // 3]                           # no trailing newline
        assert not data.endswith(b"\n")
    else:
        data = data + b"P999,FAM001,child\n"                          # 3 of 11 columns
    path.write_bytes(data)
    result = ingest(drop, wh, "2024-12-31")
    assert result.exit_code == 1
    assert "cohort_members.csv" in result.output
    assert ("does not end with a newline" if cut == "mid_row" else "cut short") in result.output
    assert "truncated" in result.output
    assert sha(wh) == before


def test_shrink_over_the_limit_is_refused_then_accepted(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    month_of_cohort(drop, "2024-10", 10)
    write_delivery(drop, "2024-11", "cohort_members.csv", [member(i) for i in range(8)])
    assert ingest(drop, wh, "2024-11-30").exit_code == 0              # 20%: not more
    assert current_members(wh) == 8
    write_delivery(drop, "2024-12", "cohort_members.csv", [member(i) for i in range(6)])
    before = sha(wh)
    refused = ingest(drop, wh, "2024-12-31")
    assert refused.exit_code == 1
    assert "would delete 2 of the 8 current keys" in refused.output
    assert "--accept-shrink 2024-12/cohort_members.csv" in refused.output
    assert sha(wh) == before
    accepted = ingest(drop, wh, "2024-12-31", "--accept-shrink", "2024-12/cohort_members.csv")
    assert accepted.exit_code == 0, accepted.output
    assert current_members(wh) == 6
    assert query(wh, "SELECT month, file FROM meta.delivery_checks "
                     "WHERE finding = 'shrink_accepted'") == [("2024-12", "cohort_members.csv")]


def test_shrink_accepted_by_path_and_other_extracts_guarded(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    ep = {"child_id": "C1", "first_name": "Jo", "last_name": "Bloggs",
          "episode_type": "REFERRAL", "start_date": "01/01/2024"}
    write_delivery(drop, "2024-10", "social_care_episodes.csv",
                   [{**ep, "episode_id": f"E{i}"} for i in range(10)])
    write_delivery(drop, "2024-11", "social_care_episodes.csv",
                   [{**ep, "episode_id": f"E{i}"} for i in range(5)])
    refused = ingest(drop, wh, "2024-11-30")
    assert refused.exit_code == 1 and "would delete 5 of the 10" in refused.output
    path = str(drop / "2024-11" / "social_care_episodes.csv")
    assert ingest(drop, wh, "2024-11-30", "--accept-shrink", path).exit_code == 0


def test_missing_episodes_older_than_three_years_leave_freely(tmp_path: Path) -> None:
    """social_care_missing keeps "episodes in the last 3 years": the old ones leave
    without counting as a shrink, and a recent one leaving still does."""
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    row = {"child_id": "C1", "first_name": "Jo", "last_name": "Bloggs", "missing_type": "MISSING"}
    old = [{**row, "missing_id": f"M{i}", "start_at": f"{10 + i:02d}/08/2021 10:00"}
           for i in range(4)]
    recent = [{**row, "missing_id": f"R{i}", "start_at": "01/06/2024 10:00"} for i in range(4)]
    write_delivery(drop, "2024-07", "social_care_missing.csv", old + recent)
    write_delivery(drop, "2024-08", "social_care_missing.csv", recent)
    assert ingest(drop, wh, "2024-08-31").exit_code == 0
    write_delivery(drop, "2024-09", "social_care_missing.csv", recent[:2])
    refused = ingest(drop, wh, "2024-09-30")
    assert refused.exit_code == 1 and "would delete 2 of the 4" in refused.output


def test_snapshot_equal_to_an_older_delivery_is_applied(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    month_of_cohort(drop, "2024-10", 6)
    month_of_cohort(drop, "2024-11", 6)
    write_delivery(drop, "2024-11", "cohort_members.csv",
                   [member(i, role="parent_carer" if i == 0 else "child") for i in range(6)])
    assert ingest(drop, wh, "2024-11-30").exit_code == 0
    (drop / "2024-12").mkdir()
    for name in ("cohort_members.csv", "cohort_families.csv"):       # December = October
        shutil.copy(drop / "2024-10" / name, drop / "2024-12" / name)
    assert ingest(drop, wh, "2024-12-31").exit_code == 0
    assert query(wh, "SELECT role FROM staging.cohort_members WHERE person_ref = 'P000'") == [
        ("child",)]                                                   # the role change undone
    statuses = query(wh, "SELECT month, file, status FROM meta.deliveries "
                         "WHERE month = '2024-12' ORDER BY file")
    # families: same as November, the latest: skipped yet shown as delivered that month.
    assert statuses == [("2024-12", "cohort_families.csv", "unchanged"),
                        ("2024-12", "cohort_members.csv", "loaded")]
    assert query(wh, "SELECT status FROM meta.delivery_months WHERE extract = 'cohort_families'"
                     " AND month = '2024-12'") == [("delivered",)]


def test_a_month_loaded_before_is_known_by_its_sha_and_a_changed_one_inspected_whole(
        tmp_path: Path) -> None:
    """A file of a month already held is matched by its sha256 alone; when it differs
    (a corrected re-delivery) it is read whole again, so a bad encoding still stops."""
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    month_of_cohort(drop, "2024-11", 6)
    assert ingest(drop, wh, "2024-11-30").exit_code == 0
    again = ingest(drop, wh, "2024-11-30")
    assert again.exit_code == 0
    assert query(wh, "SELECT count(*) FROM meta.deliveries WHERE status = 'loaded'") == [(2,)]
    path = drop / "2024-11" / "cohort_members.csv"
    path.write_bytes(path.read_bytes().replace(b"Smith", "Smïth".encode(), 1)
                     + b"P900,FAM000,child,Zo\xeb,Smith,01/02/2012\n")
    mixed = ingest(drop, wh, "2024-11-30")
    assert mixed.exit_code != 0
    assert "mixes UTF-8 with another encoding" in mixed.output
    assert query(wh, "SELECT count(*) FROM meta.deliveries WHERE status = 'loaded'") == [(2,)]


def test_drop_folder_faults_are_listed_and_kept(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    police = {"incident_ref": "I1", "reported_at": "2024-09-01T10:00:00", "category": "ASB"}
    school = {"upn": "B123456789012", "first_name": "A", "last_name": "B", "dob": "01/02/2012",
              "school_urn": "1", "phase": "primary", "academic_year": "2024/25", "term": "AUT",
              "possible_sessions": "10", "authorised_absence": "0", "unauthorised_absence": "0"}
    for month in ("2024-09", "2024-10", "2024-11", "2024-12"):
        month_of_cohort(drop, month, 3)
        if month != "2024-11":
            write_delivery(drop, month, "police_incidents.csv", [police])
    write_delivery(drop, "2024-09", "school_attendance.csv", [school])
    (drop / "2024-13").mkdir()
    write_delivery(drop, "2024-13", "cohort_members.csv", [member(1)])
    (drop / "2024-12" / "cohort_addresses.xlsx").write_bytes(b"PK\x03\x04")
    (drop / "2024-12" / "Yot_Offences.csv").write_text("offence_id\n")
    result = ingest(drop, wh, "2025-01-31")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "2024-13: not read: a folder whose name is not a month YYYY-MM" in out
    assert "2024-12/cohort_addresses.xlsx: not read: only CSV files are read" in out
    assert "2024-12/Yot_Offences.csv: not read: file names are case-sensitive" in out
    assert "police_incidents.csv: not delivered in 2024-11" in out
    assert "2025-01: no month folder" in out
    checks = set(query(wh, "SELECT month, file, finding FROM meta.delivery_checks"))
    assert {("2024-13", "", "not_a_month_folder"),
            ("2024-12", "cohort_addresses.xlsx", "unexpected_file"),
            ("2024-12", "Yot_Offences.csv", "unexpected_file"),
            ("2024-11", "police_incidents.csv", "missing"),
            ("2025-01", "", "missing_month")} <= checks
    months = dict(query(wh, "SELECT month, status FROM meta.delivery_months "
                            "WHERE extract = 'police_incidents'"))
    assert months == {"2024-09": "delivered", "2024-10": "delivered", "2024-11": "missing",
                      "2024-12": "delivered", "2025-01": "missing"}
    school_months = dict(query(wh, "SELECT month, status FROM meta.delivery_months "
                                   "WHERE extract = 'school_attendance'"))
    # Termly (every 4 months): not due until January, then missing.
    assert school_months == {"2024-09": "delivered", "2024-10": "not_due", "2024-11": "not_due",
                             "2024-12": "not_due", "2025-01": "missing"}
    assert ("2024-12", "school_attendance.csv", "missing") not in checks


@pytest.mark.parametrize("special", ["dev_zero", "fifo"])
def test_special_files_are_refused_at_once(tmp_path: Path, special: str) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    month_of_cohort(drop, "2024-12", 3)
    target = drop / "2024-12" / "yot_offences.csv"
    if special == "dev_zero":
        target.symlink_to("/dev/zero")
    else:
        os.mkfifo(target)
    result = famlink("ingest", "--extracts", str(drop), "--warehouse", str(wh),
                     "--as-of", "2024-12-31", timeout=60)
    assert result.returncode == 1
    assert "yot_offences.csv" in result.stderr
    assert ("symbolic link" if special == "dev_zero" else "not a regular file") in result.stderr
    assert "Traceback" not in result.stderr
    assert not wh.exists()


def test_symlink_to_a_file_outside_the_drop_is_refused(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    month_of_cohort(drop, "2024-12", 3)
    outside = write_delivery(tmp_path / "elsewhere", "2024-12", "yot_offences.csv", [])
    (drop / "2024-12" / "yot_offences.csv").symlink_to(outside)
    result = ingest(drop, wh, "2024-12-31")
    assert result.exit_code == 1
    assert "yot_offences.csv" in result.output and "symbolic link" in result.output
    assert not wh.exists()


def test_windows_1252_file_is_decoded_whole_with_a_warning(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    names = [("Zoë", "O'Brien"), ("Siobhán", "Ní Bhriain"), ("José", "Muñoz")]
    path = write_delivery(drop, "2024-12", "cohort_members.csv",
                          [member(i, first_name=f, last_name=s)
                           for i, (f, s) in enumerate(names)], crlf=True)
    path.write_bytes(path.read_bytes().decode("utf-8").encode("cp1252"))
    result = ingest(drop, wh, "2024-12-31")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "2024-12/cohort_members.csv: not valid UTF-8: decoded as Windows-1252" in out
    assert query(wh, "SELECT first_name, last_name FROM raw.cohort_members "
                     "ORDER BY person_ref") == names
    assert query(wh, "SELECT count(*) FROM meta.rejects") == [(0,)]
    assert query(wh, "SELECT file, finding FROM meta.delivery_checks WHERE finding = 'encoding'"
                 ) == [("cohort_members.csv", "encoding")]


def test_indicator_of_another_form_is_a_row_fault(tmp_path: Path, ) -> None:
    drop, wh, out = tmp_path / "drop", tmp_path / "w.duckdb", tmp_path / "rejects.csv"
    problem = {"family_id": "FAM000", "identified_on": "01/01/2024"}
    write_delivery(drop, "2024-12", "cohort_problems.csv", [
        {**problem, "indicator": "1A"}, {**problem, "indicator": "X1"},
        {**problem, "indicator": "9[/red]"}, {**problem, "indicator": "3Aa"}])
    result = ingest(drop, wh, "2024-12-31")
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["rejects", "--warehouse", str(wh), "--out", str(out)]
                         ).exit_code == 0
    lines = out.read_text().splitlines()[1:]
    assert [line.split(",")[:4] for line in lines] == [
        ["2024-12", "cohort_problems.csv", "2", "indicator"],
        ["2024-12", "cohort_problems.csv", "3", "indicator"]]
    assert all("not an indicator code" in line for line in lines)
    assert query(wh, "SELECT indicator FROM raw.cohort_problems ORDER BY 1") == [("1A",),
                                                                               ("3Aa",)]


def test_references_that_are_formulas_are_rejected(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-12", "cohort_members.csv", [
        member(0), member(1, family_id='=HYPERLINK("http://x.example","click")'),
        member(2, person_ref="+P002"), member(3, person_ref="@P003"),
        member(4, family_id="-FAM1"), member(5, person_ref="P\t005")])
    result = ingest(drop, wh, "2024-12-31")
    assert result.exit_code == 0, result.output
    got = query(wh, 'SELECT row_number, "column", reason FROM meta.rejects ORDER BY 1')
    assert [(r, c) for r, c, _ in got] == [(2, "family_id"), (3, "person_ref"),
                                           (4, "person_ref"), (5, "family_id"),
                                           (6, "person_ref")]
    assert all(reason.startswith("not a reference") for _, _, reason in got)
    assert "HYPERLINK" not in result.output
    assert query(wh, "SELECT person_ref FROM raw.cohort_members") == [("P000",)]


def test_headerless_file_message_names_columns_not_data(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    path = write_delivery(drop, "2024-12", "cohort_members.csv", [
        member(0, first_name="Jessica", last_name="Morgan", dob="08/05/1978",
               ni_number="ZJ699181D")])
    path.write_bytes(path.read_bytes().split(b"\n", 1)[1])           # header line removed
    result = famlink("ingest", "--extracts", str(drop), "--warehouse", str(wh),
                     "--as-of", "2024-12-31")
    assert result.returncode == 1
    message = result.stdout + result.stderr
    assert "cohort_members.csv" in message and "no header row" in message
    assert "missing column(s) person_ref, family_id" in message
    for value in ("Jessica", "Morgan", "08/05/1978", "ZJ699181D", "P000", "FAM000"):
        assert value not in message


def test_guards_cover_the_contract() -> None:
    guards = load_guards()
    contract = {spec.name: spec for spec in load_contract().files.values()}
    assert {n for n in contract if guards.cadence_of(n) == 4} == {"school_attendance",
                                                                  "school_exclusions"}
    assert {n for n in contract if guards.cadence_of(n) == 3} == {"dwp_benefits",
                                                                  "dwp_employment"}
    for name, guard in guards.extracts.items():
        if guard.scope:
            assert guard.scope.column in contract[name].columns
    assert all(guards.for_extract(n).refuse_empty for n in contract if n.startswith("cohort_")
               and contract[n].delivery == "snapshot")
    for column in guards.reference_columns:
        assert any(column in spec.columns for spec in contract.values())


@pytest.mark.parametrize(("data", "outcome"), [
    (b"a" * ((1 << 20) - 1) + "ë".encode() + b"\n", "utf-8"),      # split at a read boundary
    (b"\xef\xbb\xbfa,b\nZo\xc3\xab,1\n", "utf-8"),                     # UTF-8 with BOM
    (b"a" * (1 << 20) + b"Zo\xeb\n", "windows-1252"),
    ("ë".encode() + b"a" * (1 << 20) + b"\xeb\n", "mixes UTF-8"),
    (b"\xeb" + b"a" * (1 << 20) + "ë\n".encode(), "mixes UTF-8"),
    (b"a,b\n\x81\x9d\n", "neither UTF-8 nor Windows-1252"),
])
def test_encoding_is_decided_for_the_whole_file(tmp_path: Path, data: bytes,
                                                outcome: str) -> None:
    from famlink.ingest.reading import FatalExtractError, inspect_file

    path = tmp_path / "f.csv"
    path.write_bytes(data)
    if outcome in ("utf-8", "windows-1252"):
        facts = inspect_file(path)
        assert (facts.encoding, facts.sha256) == (outcome, hashlib.sha256(data).hexdigest())
    else:
        with pytest.raises(FatalExtractError, match=outcome):
            inspect_file(path)


def test_months_of_an_extract_for_absence_based_outcomes(tmp_path: Path) -> None:
    from famlink.ingest.loading import delivered_months

    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    off = {"offence_id": "O1", "yot_person_id": "Y1", "first_name": "Jo", "last_name": "B",
           "dob": "01/01/2008", "offence_date": "01/01/2024", "offence_category": "theft",
           "gravity_score": "3"}
    write_delivery(drop, "2024-01", "yot_offences.csv", [off])
    (drop / "2024-02").mkdir()
    (drop / "2024-02" / "yot_offences.csv").write_bytes(b"")               # failed export
    write_delivery(drop, "2024-03", "cohort_families.csv", [family(1)])
    result = ingest(drop, wh, "2024-03-31", "--accept-shrink", "2024-03/cohort_members.csv")
    assert result.exit_code == 0, result.output
    assert "--accept-shrink 2024-03/cohort_members.csv: no snapshot" in result.output
    for _ in range(2):                                   # a rerun tells the same
        con = duckdb.connect(str(wh), read_only=True)
        assert delivered_months(con, "yot_offences") == {
            "2024-01": "delivered", "2024-02": "empty", "2024-03": "missing"}
        con.close()
        assert ingest(drop, wh, "2024-03-31").exit_code == 0
