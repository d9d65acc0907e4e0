"""One writer at a time, stale sessions, refused mistakes: tried as a careless user would.

Every case runs the real CLI in its own process on a real drop folder and warehouse
file; concurrent writers and killed sessions are real processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from safety_support import (
    BASE_AS_OF,
    EARLIER,
    FAMILY_ID,
    copy_base,
    digest,
    error_line,
    famlink,
    famlink_started,
    run_args,
    scalar,
    write_drop,
    write_month,
)

from famlink import __version__

NEXT_MONTH, NEXT_AS_OF = "2024-03", "2024-03-31"


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A drop and a warehouse after one real run at BASE_AS_OF, built once for all workers."""
    root = tmp_path_factory.getbasetemp().parent / "safety-base"
    root.mkdir(exist_ok=True)
    drop, warehouse = root / "drop", root / "wh" / "w.duckdb"
    with open(root / ".lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (root / "done.json").exists():
            write_drop(drop)
            warehouse.parent.mkdir()
            result = famlink(*run_args(drop, warehouse))
            (root / "done.json").write_text(json.dumps({
                "returncode": result.returncode, "stdout": result.stdout,
                "stderr": result.stderr}))
    first = json.loads((root / "done.json").read_text())
    assert first["returncode"] == 0, first["stderr"]
    return drop, warehouse


def base_output(base: tuple[Path, Path]) -> dict:
    return json.loads((base[1].parent.parent / "done.json").read_text())


def wait_for_lock_holder(lock: Path, pid: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            holder = json.loads(lock.read_text() or "{}")
        except (FileNotFoundError, ValueError):
            holder = {}
        if holder.get("pid") == pid:
            return holder
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never took {lock}")


# -- the first run -------------------------------------------------------------------------

def test_first_run_says_it_creates_a_warehouse_and_prints_data_as_it_is(base) -> None:
    out = base_output(base)
    assert "creating a new warehouse" in out["stdout"]
    assert "MarkupError" not in out["stderr"] and "Traceback" not in out["stderr"]
    if scalar(base[1], "SELECT count(*) FROM marts.family_problems WHERE indicator = '9[/red]'"):
        assert "indicator 9[/red]" in out["stdout"], out["stdout"]   # shown, not parsed


def test_warehouse_and_reports_are_owner_only(base) -> None:
    _, warehouse = base
    assert stat.S_IMODE(warehouse.stat().st_mode) == 0o600
    reports = warehouse.parent / "reports"
    assert stat.S_IMODE(reports.stat().st_mode) == 0o700
    modes = [stat.S_IMODE(p.stat().st_mode) for p in reports.iterdir()]
    assert modes and set(modes) == {0o600}, modes
    assert stat.S_IMODE(Path(f"{warehouse}.lock").stat().st_mode) == 0o600


def test_version() -> None:
    result = famlink("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"famlink {__version__}"


# -- one writer at a time ------------------------------------------------------------------

def test_a_second_writer_is_refused_at_once_while_a_run_holds_the_warehouse(
        base, tmp_path: Path) -> None:
    drop, warehouse = copy_base(base, tmp_path)
    write_month(drop, NEXT_MONTH)                  # next month's run: it has files to load
    runs_before = scalar(warehouse, "SELECT count(*) FROM claims.runs")
    first = famlink_started(*run_args(drop, warehouse, as_of=NEXT_AS_OF))
    try:
        holder = wait_for_lock_holder(Path(f"{warehouse}.lock"), first.pid)
        started = time.monotonic()
        others = [famlink_started(*run_args(drop, warehouse, as_of=NEXT_AS_OF)),
                  famlink_started("withdraw", FAMILY_ID, "--warehouse", str(warehouse),
                                  "--reason", "audit", "--by", "tester")]
        results = [subprocess.CompletedProcess(p.args, p.wait(timeout=60), *p.communicate())
                   for p in others]
        refused_in = time.monotonic() - started
        still_running = first.poll() is None
    finally:
        stdout, stderr = first.communicate(timeout=300)
    assert still_running, "the first run finished before the others started: test too slow"
    for result in results:
        assert result.returncode != 0
        line = error_line(result)
        assert f"pid {first.pid}" in line and holder["host"] in line, line
        assert f"since {holder['since']}" in line and "famlink run" in line, line
    assert refused_in < 30, "refused at once, not after waiting for the first run"
    assert first.returncode == 0, stderr
    # the first run's work is whole: exactly one more run, nothing of the refused ones
    assert scalar(warehouse, "SELECT count(*) FROM claims.runs") == runs_before + 1
    assert not Path(f"{warehouse}.building").exists()


def test_a_lock_left_by_a_killed_writer_does_not_block(base, tmp_path: Path) -> None:
    _, warehouse = copy_base(base, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from famlink.warehouse import writer_lock\n"
        "with writer_lock(Path(sys.argv[1]), command='famlink review'):\n"
        "    print('held', flush=True); time.sleep(120)"), str(warehouse)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = famlink("withdraw", FAMILY_ID, "--warehouse", str(warehouse),
                       "--reason", "audit", "--by", "tester")
        assert busy.returncode != 0
        assert f"pid {holder.pid}" in error_line(busy) and "famlink review" in busy.stderr
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert Path(f"{warehouse}.lock").read_text()      # the dead holder's note is still there
    before = digest(warehouse)
    after = famlink("withdraw", FAMILY_ID, "--warehouse", str(warehouse),
                    "--reason", "audit", "--by", "tester")
    line = error_line(after)                          # got the lock: the ledger answered
    assert "being written" not in line and "has no claim" in line, line
    assert digest(warehouse) == before


# -- a killed analyst session ----------------------------------------------------------------

ANALYST = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE main.analyst_notes AS SELECT 'kept' AS note")     # committed
con.execute("BEGIN")
con.execute("INSERT INTO main.analyst_notes VALUES ('never committed')")
print("ready", flush=True)
time.sleep(120)
"""


def start_analyst(warehouse: Path) -> subprocess.Popen:
    analyst = subprocess.Popen([sys.executable, "-c", ANALYST, str(warehouse)],
                               stdout=subprocess.PIPE, text=True)
    assert analyst.stdout.readline().strip() == "ready"
    return analyst


def test_a_killed_read_write_session_is_checkpointed_before_the_run(base,
                                                                     tmp_path: Path) -> None:
    drop, warehouse = copy_base(base, tmp_path)
    runs_before = scalar(warehouse, "SELECT count(*) FROM claims.runs")
    analyst = start_analyst(warehouse)
    os.kill(analyst.pid, signal.SIGKILL)
    analyst.wait()
    wal = Path(f"{warehouse}.wal")
    assert wal.exists(), "the killed session left its WAL"
    result = famlink(*run_args(drop, warehouse))
    assert result.returncode == 0, result.stderr
    assert not wal.exists()
    con = duckdb.connect(str(warehouse), read_only=True)      # opens: nothing stale beside it
    try:
        assert con.execute("FROM main.analyst_notes").fetchall() == [("kept",)]
        assert con.execute("SELECT count(*) FROM claims.runs").fetchone()[0] == runs_before + 1
    finally:
        con.close()


def test_a_live_read_write_session_makes_the_run_refuse(base, tmp_path: Path) -> None:
    drop, warehouse = copy_base(base, tmp_path)
    analyst = start_analyst(warehouse)
    try:
        before = digest(warehouse)
        result = famlink(*run_args(drop, warehouse))
        assert result.returncode != 0
        line = error_line(result)
        assert "open read-write in another session" in line and f"pid {analyst.pid}" in line
        assert digest(warehouse) == before
    finally:
        os.kill(analyst.pid, signal.SIGKILL)
        analyst.wait()


# -- silent mistakes refused ---------------------------------------------------------------

def test_a_warehouse_in_a_folder_that_does_not_exist_is_refused(base, tmp_path: Path) -> None:
    drop, _ = base
    result = famlink(*run_args(drop, tmp_path / "typo" / "w.duckdb"))
    assert result.returncode != 0
    assert "does not exist" in error_line(result)
    assert not (tmp_path / "typo").exists()


def test_a_run_under_another_plan_is_refused(base, tmp_path: Path) -> None:
    drop, warehouse = copy_base(base, tmp_path)
    before = digest(warehouse)
    result = famlink(*run_args(drop, warehouse, plan="thurrock"))
    assert result.returncode != 0
    assert "plan countywide, not thurrock" in error_line(result)
    assert digest(warehouse) == before


def test_a_back_run_is_refused_without_the_flag(base, tmp_path: Path) -> None:
    drop, warehouse = copy_base(base, tmp_path)
    before = digest(warehouse)
    result = famlink(*run_args(drop, warehouse, as_of=EARLIER))
    assert result.returncode != 0
    line = error_line(result)
    assert f"precedes the latest run ({BASE_AS_OF})" in line and "--back-run" in line
    assert digest(warehouse) == before


def test_a_back_run_reports_and_leaves_the_warehouse_untouched(base, tmp_path: Path) -> None:
    drop, warehouse = copy_base(base, tmp_path)
    before = digest(warehouse)
    result = famlink(*run_args(drop, warehouse, as_of=EARLIER), "--back-run")
    assert result.returncode == 0, result.stderr
    assert f"as at {EARLIER} (back-run" in result.stdout
    assert "families in the cohort" in result.stdout and "left untouched" in result.stdout
    assert digest(warehouse) == before
    assert sorted(p.name for p in warehouse.parent.iterdir()) == [
        "reports", warehouse.name, f"{warehouse.name}.lock"]
    assert [p.name for p in (warehouse.parent / "reports").iterdir()] == [
        f"run_{EARLIER}_back-run.html"], "a back-run writes its run report, nothing else"


def test_a_run_before_every_delivery_is_refused(base, tmp_path: Path) -> None:
    drop, _ = base
    warehouse = tmp_path / "w.duckdb"
    result = famlink(*run_args(drop, warehouse, as_of="2023-12-31"))
    assert result.returncode != 0
    assert "precedes every delivery (the first is 2024-01)" in error_line(result)
    assert not warehouse.exists()
    assert "creating" not in result.stdout


@pytest.mark.parametrize("command", [
    ["claims", "--out", "{tmp}/c.csv"],
    ["return", "--out-dir", "{tmp}/ret"],
    ["explain", FAMILY_ID],
])
def test_a_date_with_no_run_is_refused_and_lists_the_runs(base, tmp_path: Path,
                                                          command: list[str]) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    result = famlink(*args, "--warehouse", str(base[1]), "--as-of", EARLIER)
    assert result.returncode != 0
    assert f"no run at {EARLIER}; runs were recorded at: {BASE_AS_OF}" in error_line(result)
    assert list(tmp_path.iterdir()) == []


def test_explain_of_an_unknown_family_is_refused(base) -> None:
    result = famlink("explain", "FAM999999", "--warehouse", str(base[1]))
    assert result.returncode != 0
    assert "FAM999999 is not in this warehouse" in error_line(result)


def test_explain_prints_names_as_they_are(base) -> None:
    result = famlink("explain", FAMILY_ID, "--warehouse", str(base[1]))
    assert result.returncode == 0, result.stderr
    assert "Ann[/red]" in result.stdout and "[bold]Smith" in result.stdout
