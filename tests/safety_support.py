"""Shared helpers for the safety tests: a small real drop, the CLI as a subprocess."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
from conftest import write_delivery

BASE_AS_OF = "2024-02-29"
EARLIER = "2024-01-31"

FAMILY_ID = "FAM000001"
MEMBERS = [
    {"person_ref": "P0000001", "family_id": FAMILY_ID, "role": "child",
     "first_name": "Ann[/red]", "last_name": "[bold]Smith", "dob": "01/02/2012"},
    {"person_ref": "P0000002", "family_id": FAMILY_ID, "role": "adult", "first_name": "Bea",
     "last_name": "Smith", "dob": "03/04/1985"},
]
FAMILY = {"family_id": FAMILY_ID, "attached_on": "10/01/2024", "lead_worker": "K Jones"}
PROBLEMS = [{"family_id": FAMILY_ID, "person_ref": "P0000001", "indicator": "9[/red]",
             "identified_on": "10/01/2024"},
            {"family_id": FAMILY_ID, "person_ref": "P0000001", "indicator": "1A",
             "identified_on": "10/01/2024"}]


def famlink(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``famlink ARGS`` as a user runs it: a separate process (a wide terminal)."""
    return subprocess.run([sys.executable, "-m", "famlink", *args], capture_output=True,
                          text=True, check=False, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def famlink_started(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "famlink", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def write_drop(drop: Path) -> Path:
    """Two months of cohort files (a child with markup-like names, an odd indicator code)."""
    for month in ("2024-01", "2024-02"):
        write_month(drop, month)
    return drop


def write_month(drop: Path, month: str) -> None:
    """The cohort as delivered in a month (a new lead worker each month: new files to load)."""
    write_delivery(drop, month, "cohort_families.csv", [{**FAMILY, "lead_worker": month}])
    write_delivery(drop, month, "cohort_members.csv", MEMBERS)
    write_delivery(drop, month, "cohort_problems.csv", PROBLEMS)


def run_args(drop: Path, warehouse: Path, as_of: str = BASE_AS_OF,
             plan: str = "countywide") -> list[str]:
    return ["run", "--extracts", str(drop), "--warehouse", str(warehouse), "--plan", plan,
            "--as-of", as_of, "--no-prefect"]


def copy_base(base: tuple[Path, Path], to: Path) -> tuple[Path, Path]:
    """A private copy of the base drop and warehouse for one test."""
    drop, warehouse = base
    shutil.copytree(drop, to / "drop")
    (to / "wh").mkdir()
    shutil.copyfile(warehouse, to / "wh" / warehouse.name)
    return to / "drop", to / "wh" / warehouse.name


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def scalar(warehouse: Path, sql: str) -> object:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a refusal prints; fails if there is more, or a traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
