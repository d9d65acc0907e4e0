"""The published warehouse stays readable while the next run builds and publishes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
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


def test_publishing_syncs_the_file_and_its_folder_around_the_rename(tmp_path: Path) -> None:
    """Seen with strace on a real withdrawal: a power cut cannot lose a published write."""
    from datetime import date

    from test_claims_support import PLAN, new_warehouse

    from famlink.claims import record_due_claims

    strace = shutil.which("strace")
    if strace is None or subprocess.run([strace, "-o", os.devnull, "true"],
                                        capture_output=True, check=False).returncode != 0:
        pytest.skip("strace is not available (or ptrace is not permitted) here")
    warehouse = tmp_path / "wh.duckdb"
    con, marts = new_warehouse(warehouse)
    marts.family("FAM000001", "2023-01-10", {"1A": None, "2A": None})
    marts.achieved("2024-06-30", "FAM000001", {"1A": "2023-11-01", "2A": "2023-12-01"})
    assert record_due_claims(con, PLAN, date(2024, 6, 30)).new_claims == 1
    con.close()
    trace = tmp_path / "trace.txt"
    result = subprocess.run([strace, "-f", "-y", "-e", "trace=fsync,rename,renameat,renameat2",
                             "-o", str(trace), sys.executable, "-m", "famlink", "withdraw",
                             "FAM000001", "--warehouse", str(warehouse), "--reason", "audit",
                             "--by", "tester"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    calls = [line.split(None, 1)[1] for line in trace.read_text().splitlines()
             if "fsync(" in line or "rename" in line]
    renamed = next(i for i, c in enumerate(calls)
                   if "rename" in c and f'"{warehouse}.building", ' in c)
    before, after = calls[:renamed], calls[renamed + 1:]
    assert any(f"<{warehouse}.building>)" in c for c in before if c.startswith("fsync("))
    assert any(f"<{tmp_path}>)" in c for c in before if c.startswith("fsync("))
    assert any(f"<{warehouse}>)" in c for c in after if c.startswith("fsync("))
    assert any(f"<{tmp_path}>)" in c for c in after if c.startswith("fsync("))
