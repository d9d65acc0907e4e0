"""The command line as a data officer uses it: exit codes, messages, CSV outputs."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import write_delivery
from typer.testing import CliRunner

from famlink.cli import app

runner = CliRunner()
MEMBER = {"person_ref": "P1", "family_id": "F1", "role": "child", "first_name": "Zoë",
          "last_name": "O'Brien", "dob": "01/02/2012", "upn": "B123456789012"}


def test_ingest_then_rejects_csv(tmp_path: Path) -> None:
    drop, wh, out = tmp_path / "drop", tmp_path / "w.duckdb", tmp_path / "rejects.csv"
    write_delivery(drop, "2024-01", "cohort_members.csv",
                   [MEMBER, {**MEMBER, "person_ref": "P2", "dob": "2012-02-01"}])
    result = runner.invoke(app, ["ingest", "--extracts", str(drop), "--warehouse", str(wh),
                                 "--as-of", "2024-01-31"])
    assert result.exit_code == 0, result.output
    assert "cohort_members.csv" in result.output
    result = runner.invoke(app, ["rejects", "--warehouse", str(wh), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["month", "file", "row_number", "column", "reason", "severity"]
    assert {r["severity"] for r in rows} <= {"rejected", "flagged"}
    assert [(r["row_number"], r["column"]) for r in rows] == [("1", "upn"), ("2", "dob"),
                                                              ("2", "upn")]
    assert all(r["month"] == "2024-01" and r["file"] == "cohort_members.csv" for r in rows)


def test_fatal_header_exits_non_zero_naming_file(tmp_path: Path) -> None:
    drop, wh = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-01", "yot_offences.csv", [],
                   header=["offence_id", "person", "first_name"])
    result = runner.invoke(app, ["ingest", "--extracts", str(drop), "--warehouse", str(wh),
                                 "--as-of", "2024-01-31"])
    assert result.exit_code == 1
    assert "yot_offences.csv" in result.output and "header" in result.output
    assert not wh.exists()


def test_bad_as_of_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", "--extracts", str(tmp_path), "--warehouse",
                                 str(tmp_path / "w.duckdb"), "--as-of", "31/01/2024"])
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output
