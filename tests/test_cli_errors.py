"""Every user error of every command: one line on stderr, a non-zero exit, no traceback.

Each case runs the real command line in its own process (``python -m famlink``)
at the default 80 columns, against a real warehouse built by ``famlink run``
from a small drop. Data values never reach the message: a DuckDB conversion
error about a surname must not print the surname.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from conftest import write_delivery
from safety_support import run_args, write_drop

STEP_LINE = re.compile(r"^\d\d:\d\d:\d\d step \d+: [a-z ]+$")   # progress in a log
Case = Callable[[Path, Path, Path], list[str]]   # (tmp, drop, warehouse) -> the arguments


def famlink(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``famlink ARGS`` in a separate process, at 80 columns (where wrapping would show)."""
    return subprocess.run([sys.executable, "-m", "famlink", *args], capture_output=True,
                          text=True, check=False, timeout=timeout,
                          env={**os.environ, "COLUMNS": "80", "DO_NOT_TRACK": "1"})


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A drop of two months and the warehouse ``famlink run`` made of it (with a ledger).

    A column of surnames is added for the query cases: the value that must not leak.
    """
    root = tmp_path_factory.mktemp("base")
    drop, warehouse = write_drop(root / "drop"), root / "wh" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    result = famlink(*run_args(drop, warehouse))
    assert result.returncode == 0, result.stderr
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE SCHEMA IF NOT EXISTS scratch; CREATE TABLE scratch.names AS "
                "SELECT 'Wolstenholme' AS last_name, '1985-13-45' AS dob")
    con.close()
    return drop, warehouse


def not_duckdb(tmp: Path) -> Path:
    path = tmp / "notes.duckdb"
    path.write_text("minutes of the panel meeting, not a warehouse\n" * 50)
    return path


def bad_header(tmp: Path) -> Path:
    """A drop whose offences file has not the contract's header (a fatal extract)."""
    drop = tmp / "drop_bad"
    write_delivery(drop, "2024-01", "yot_offences.csv", [], header=["offence_id", "person"])
    return drop


def a_file(tmp: Path) -> Path:
    path = tmp / "plain.txt"
    path.write_text("x\n")
    return path


def run(drop: Path, warehouse: Path, plan: str = "countywide",
        as_of: str = "2024-02-29") -> list[str]:
    return run_args(drop, warehouse, as_of=as_of, plan=plan)


CASES: dict[str, Case] = {
    # famlink run
    "run/warehouse folder missing": lambda t, d, w: run(d, t / "no" / "such" / "w.duckdb"),
    "run/unknown plan": lambda t, d, w: run(d, t / "w.duckdb", plan="thurrok"),
    "run/bad date": lambda t, d, w: run(d, t / "w.duckdb", as_of="31/12/2024"),
    "run/extracts folder missing": lambda t, d, w: run(t / "nowhere", t / "w.duckdb"),
    "run/extracts is a file": lambda t, d, w: run(a_file(t), t / "w.duckdb"),
    "run/warehouse is a folder": lambda t, d, w: run(d, t),
    "run/warehouse not DuckDB": lambda t, d, w: run(d, not_duckdb(t)),
    "run/fatal extract": lambda t, d, w: run(bad_header(t), t / "w.duckdb", as_of="2024-01-31"),
    "run/plan other than the warehouse's": lambda t, d, w: run(d, w, plan="thurrock"),
    "run/missing option": lambda t, d, w: ["run", "--extracts", str(d), "--warehouse",
                                           str(w)],
    "ingest/extracts folder missing": lambda t, d, w: ["ingest", "--extracts", str(t / "no"),
                                                       "--warehouse", str(t / "w.duckdb"),
                                                       "--as-of", "2024-01-31"],
    "ingest/bad date": lambda t, d, w: ["ingest", "--extracts", str(d), "--warehouse",
                                        str(t / "w.duckdb"), "--as-of", "2024-13-01"],
    "rejects/warehouse missing": lambda t, d, w: ["rejects", "--warehouse",
                                                  str(t / "none.duckdb"), "--out",
                                                  str(t / "r.csv")],
    "rejects/warehouse not DuckDB": lambda t, d, w: ["rejects", "--warehouse",
                                                     str(not_duckdb(t)), "--out",
                                                     str(t / "r.csv")],
    "rejects/out is a folder": lambda t, d, w: ["rejects", "--warehouse", str(w), "--out",
                                                str(t)],
    "claims/bad date": lambda t, d, w: ["claims", "--warehouse", str(w), "--as-of", "Dec 2024",
                                        "--out", str(t / "c.csv")],
    "claims/no run at date": lambda t, d, w: ["claims", "--warehouse", str(w), "--as-of",
                                              "2023-06-30", "--out", str(t / "c.csv")],
    "claims/warehouse missing": lambda t, d, w: ["claims", "--warehouse",
                                                 str(t / "none.duckdb"), "--as-of",
                                                 "2024-02-29", "--out", str(t / "c.csv")],
    "claims/out is a folder": lambda t, d, w: ["claims", "--warehouse", str(w), "--as-of",
                                               "2024-02-29", "--out", str(t)],
    "return/bad date": lambda t, d, w: ["return", "--warehouse", str(w), "--as-of", "2024",
                                        "--out-dir", str(t)],
    "return/out-dir is a file": lambda t, d, w: ["return", "--warehouse", str(w), "--as-of",
                                                 "2024-02-29", "--out-dir", str(a_file(t))],
    # audit and ledger
    "explain/family missing": lambda t, d, w: ["explain", "FAM999999", "--warehouse", str(w)],
    "explain/bad date": lambda t, d, w: ["explain", "FAM000001", "--warehouse", str(w),
                                         "--as-of", "yesterday"],
    "explain/warehouse missing": lambda t, d, w: ["explain", "FAM000001", "--warehouse",
                                                  str(t / "none.duckdb")],
    "withdraw/family missing": lambda t, d, w: ["withdraw", "FAM999999", "--warehouse", str(w),
                                                "--reason", "audit"],
    "withdraw/warehouse missing": lambda t, d, w: ["withdraw", "FAM000001", "--warehouse",
                                                   str(t / "none.duckdb"), "--reason", "audit"],
    "review/warehouse missing": lambda t, d, w: ["review", "--warehouse",
                                                 str(t / "none.duckdb")],
    "review/warehouse not DuckDB": lambda t, d, w: ["review", "--warehouse",
                                                    str(not_duckdb(t))],
    "review decide/pair missing": lambda t, d, w: ["review", "decide", "no-such-pair",
                                                   "--warehouse", str(w), "--same",
                                                   "--reason", "checked"],
    "review decide/no decision": lambda t, d, w: ["review", "decide", "p", "--warehouse",
                                                  str(w), "--reason", "checked"],
    # query and describe
    "query/syntax": lambda t, d, w: ["query", "SELEC 1", "--warehouse", str(w)],
    "query/unknown view": lambda t, d, w: ["query", "FROM nowhere", "--warehouse", str(w)],
    "query/conversion quotes a value": lambda t, d, w: [
        "query", "SELECT last_name::INTEGER FROM scratch.names", "--warehouse", str(w),
        "--identifiable"],
    "query/date conversion quotes a value": lambda t, d, w: [
        "query", "SELECT dob::DATE FROM scratch.names", "--warehouse", str(w),
        "--identifiable"],
    "query/error() of a value": lambda t, d, w: [
        "query", "SELECT error(last_name) FROM scratch.names", "--warehouse", str(w),
        "--identifiable"],
    "query/strptime of a value": lambda t, d, w: [
        "query", "SELECT strptime(last_name, '%Y') FROM scratch.names", "--warehouse", str(w),
        "--identifiable"],
    "query/bad date": lambda t, d, w: ["query", "FROM families", "--warehouse", str(w),
                                       "--as-of", "29-02-2024"],
    "query/warehouse missing": lambda t, d, w: ["query", "SELECT 1", "--warehouse",
                                                str(t / "none.duckdb")],
    "query/warehouse not DuckDB": lambda t, d, w: ["query", "SELECT 1", "--warehouse",
                                                   str(not_duckdb(t))],
    "describe/unknown table": lambda t, d, w: ["describe", "nosuch.table"],
    # the other commands
    "link/left missing": lambda t, d, w: ["link", "--left", str(t / "a.csv"), "--right",
                                          str(t / "b.csv"), "--out", str(t / "p.csv")],
    "link/left is a folder": lambda t, d, w: ["link", "--left", str(t), "--right", str(t),
                                              "--out", str(t / "p.csv")],
    "generate/unknown plan": lambda t, d, w: ["generate", "--out", str(t / "g"), "--plan",
                                              "nowhere"],
    "generate/bad start month": lambda t, d, w: ["generate", "--out", str(t / "g"),
                                                 "--start-month", "2023-13"],
    "generate/bad conventions": lambda t, d, w: ["generate", "--out", str(t / "g"),
                                                 "--conventions", "odd"],
    "serve/unknown plan": lambda t, d, w: ["serve", "--extracts", str(d), "--warehouse",
                                           str(w), "--plan", "nowhere"],
    "serve/bad cron": lambda t, d, w: ["serve", "--extracts", str(d), "--warehouse", str(w),
                                       "--plan", "countywide", "--cron", "monthly"],
    "unknown command": lambda t, d, w: ["rn", "--warehouse", str(w)],
    "unknown option": lambda t, d, w: ["rejects", "--warehouse", str(w), "--output", "r.csv"],
}


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The error line; the only other lines allowed are a run's step lines before it."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not STEP_LINE.match(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "internal error" not in lines[0], lines[0]       # a user error, named as one
    return lines[0]


@pytest.mark.parametrize("name", list(CASES))
def test_a_user_error_is_one_line(name: str, base: tuple[Path, Path], tmp_path: Path) -> None:
    drop, warehouse = base
    copy = tmp_path / "wh" / warehouse.name
    copy.parent.mkdir()
    shutil.copyfile(warehouse, copy)
    result = famlink(*CASES[name](tmp_path, drop, copy))
    line = one_error_line(result)
    assert "Wolstenholme" not in result.stdout + result.stderr
    assert "1985-13-45" not in result.stdout + result.stderr
    if name == "run/fatal extract":
        assert "yot_offences.csv" in line and "header" in line, line
        assert result.returncode == 1
    if name.startswith("query/") and "value" in name:
        assert line.startswith("error: query failed: "), line


def test_a_conversion_error_keeps_its_kind_and_position(base: tuple[Path, Path]) -> None:
    result = famlink("query", "SELECT last_name::INTEGER FROM scratch.names", "--warehouse",
                     str(base[1]), "--identifiable")
    line = one_error_line(result)
    assert "Conversion Error: Could not convert string '...' to INT32" in line, line
    assert result.returncode == 1


def test_a_query_error_gives_its_position(base: tuple[Path, Path]) -> None:
    line = one_error_line(famlink("query", "SELECT month\nFORM meta.deliveries",
                                  "--warehouse", str(base[1]), "--identifiable"))
    assert line.startswith("error: query failed: Parser Error: syntax error at or near"), line
    assert line.endswith(" at line 2, column 6"), line


@pytest.fixture
def locked(base: tuple[Path, Path], tmp_path: Path) -> Iterator[Path]:
    """A copy of the warehouse whose writer lock another process holds."""
    copy = tmp_path / "locked" / base[1].name
    copy.parent.mkdir()
    shutil.copyfile(base[1], copy)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from famlink.warehouse import writer_lock\n"
         "with writer_lock(Path(sys.argv[1]), command='famlink run'):\n"
         "    print('held', flush=True); time.sleep(120)", str(copy)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield copy
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command", ["run", "ingest", "withdraw", "review decide"])
def test_a_locked_warehouse_is_refused_in_one_line(command: str, locked: Path,
                                                   base: tuple[Path, Path]) -> None:
    drop = base[0]
    args = {"run": run(drop, locked),
            "ingest": ["ingest", "--extracts", str(drop), "--warehouse", str(locked),
                       "--as-of", "2024-02-29"],
            "withdraw": ["withdraw", "FAM000001", "--warehouse", str(locked), "--reason",
                         "audit"],
            "review decide": ["review", "decide", "p1", "--warehouse", str(locked), "--same",
                              "--reason", "checked"]}[command]
    before = locked.read_bytes()
    started = time.monotonic()
    line = one_error_line(famlink(*args))
    assert time.monotonic() - started < 60
    assert "famlink run" in line or "lock" in line, line       # names who holds it
    assert locked.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_extract_is_one_line(base: tuple[Path, Path], tmp_path: Path) -> None:
    drop = shutil.copytree(base[0], tmp_path / "drop")
    target = drop / "2024-01" / "cohort_members.csv"
    target.chmod(0)
    line = one_error_line(famlink("ingest", "--extracts", str(drop), "--warehouse",
                                  str(tmp_path / "w.duckdb"), "--as-of", "2024-01-31"))
    assert "cohort_members.csv" in line


def test_version_prints_and_exits_zero() -> None:
    from famlink import __version__

    result = famlink("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"famlink {__version__}"


@pytest.fixture
def open_elsewhere(base: tuple[Path, Path], tmp_path: Path) -> Iterator[Path]:
    """A copy of the warehouse another process holds open read-write (a DuckDB session)."""
    copy = tmp_path / "open" / base[1].name
    copy.parent.mkdir()
    shutil.copyfile(base[1], copy)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, duckdb; con = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(120)", str(copy)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        yield copy
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command", ["rejects", "query", "review", "withdraw"])
def test_a_warehouse_open_elsewhere_is_one_line(command: str, open_elsewhere: Path,
                                                tmp_path: Path) -> None:
    wh = str(open_elsewhere)
    args = {"rejects": ["rejects", "--warehouse", wh, "--out", str(tmp_path / "r.csv")],
            "query": ["query", "FROM families", "--warehouse", wh],
            "review": ["review", "--warehouse", wh],
            "withdraw": ["withdraw", "FAM000001", "--warehouse", wh, "--reason", "audit"]}
    line = one_error_line(famlink(*args[command]))
    assert "is open read-write in another session (pid " in line, line
