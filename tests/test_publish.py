"""The published warehouse stays readable while the next run builds and publishes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
from conftest import write_delivery

MEMBER = {"person_ref": "P1", "family_id": "F1", "role": "child", "first_name": "Ann",
          "last_name": "Smith", "dob": "01/02/2012"}


def famlink(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "famlink", *args], capture_output=True,
                          text=True, check=False)


def count_members(warehouse: Path) -> int:
    out = subprocess.run([sys.executable, "-c", (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(con.execute('SELECT count(*) FROM raw.cohort_members').fetchall()[0][0])"),
        str(warehouse)], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_reader_keeps_reading_while_a_run_publishes(tmp_path: Path) -> None:
    drop, warehouse = tmp_path / "drop", tmp_path / "w.duckdb"
    write_delivery(drop, "2024-01", "cohort_members.csv", [MEMBER])
    first = famlink("ingest", "--extracts", str(drop), "--warehouse", str(warehouse),
                    "--as-of", "2024-01-31")
    assert first.returncode == 0, first.stderr
    analyst = duckdb.connect(str(warehouse), read_only=True)   # an analyst's open session
    write_delivery(drop, "2024-02", "cohort_members.csv",
                   [MEMBER, {**MEMBER, "person_ref": "P2"}])
    second = famlink("ingest", "--extracts", str(drop), "--warehouse", str(warehouse),
                     "--as-of", "2024-02-29")
    assert second.returncode == 0, second.stderr
    # The open session still sees the warehouse it opened; a new one sees the new run.
    assert analyst.execute("SELECT count(*) FROM raw.cohort_members").fetchall() == [(1,)]
    analyst.close()
    assert count_members(warehouse) == 3
