"""What the command line shows while it works and in its help.

``famlink run`` in a log (stderr not a terminal) says each step in one line;
on a terminal (a real pseudo-terminal here) it draws a live display that
ends with every step done. Help names date options ``YYYY-MM-DD``, and
``--by`` defaults to the login name, shown in help and recorded.
"""

from __future__ import annotations

import getpass
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from safety_support import run_args, write_drop
from test_claims_support import PLAN, d, new_warehouse
from typer.testing import CliRunner

from famlink.cli import app

# the steps of the monthly run, in order (a run may add more: each is listed once, numbered)
STEPS = ["ingest extracts", "build staging", "link people and households",
         "evaluate plan outcomes", "record claims", "publish analyst layer", "report linkage"]
STEP_LINE = re.compile(r"^\d\d:\d\d:\d\d step (\d+): (.+)$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
ENV = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def test_a_run_in_a_log_says_each_step_in_one_line(tmp_path: Path) -> None:
    drop, warehouse = write_drop(tmp_path / "drop"), tmp_path / "w.duckdb"
    result = subprocess.run([sys.executable, "-m", "famlink", *run_args(drop, warehouse)],
                            capture_output=True, text=True, check=False, timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr
    steps = [STEP_LINE.match(line) for line in result.stderr.splitlines()]
    listed = [m.group(2) for m in steps if m]
    assert [int(m.group(1)) for m in steps if m] == list(range(1, len(listed) + 1))
    assert [s for s in listed if s in STEPS] == STEPS, result.stderr
    assert len(set(listed)) == len(listed)
    assert "\x1b[" not in result.stderr                  # no terminal codes in a log
    assert "Traceback" not in result.stderr


def test_a_run_on_a_terminal_draws_its_progress(tmp_path: Path) -> None:
    drop, warehouse = write_drop(tmp_path / "drop"), tmp_path / "w.duckdb"
    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "famlink", *run_args(drop, warehouse)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=secondary, env={**ENV, "COLUMNS": "120",
                                                      "TERM": "xterm-256color"})
    os.close(secondary)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([primary], [], [], 300)
        if not ready:
            process.kill()
            pytest.fail("no output from the run for 300 s")
        try:
            chunk = os.read(primary, 65536)
        except OSError:                       # the terminal closed: the run ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait(timeout=60) == 0
    raw = b"".join(chunks).decode("utf-8", errors="replace")
    assert "\x1b[" in raw                                  # drawn, not logged
    assert not STEP_LINE.search(ANSI.sub("", raw).replace("\r", "\n"))
    screen = ANSI.sub("", raw)
    assert "Traceback" not in screen and "error" not in screen.lower()
    final = screen[screen.rindex("done ingest extracts"):]     # the last frame drawn
    for step in STEPS:
        assert re.search(rf"done\s+{step}\b", final), (step, final[-2000:])
    assert re.search(r"ingest extracts\s+\S+ (\d+)/\1\b", final), final[:400]


@pytest.mark.parametrize("command", [["run"], ["ingest"], ["claims"], ["return"], ["explain"],
                                     ["query"]])
def test_dates_read_yyyy_mm_dd_in_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if "--as-of" in line)
    assert "YYYY-MM-DD" in line and "<str>" not in line and "TEXT" not in line, line


@pytest.mark.parametrize("command", [["withdraw"], ["review", "decide"]])
def test_by_defaults_to_the_login_name_in_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--by" in text and f"[default: {getpass.getuser()}]" in text, result.output


def test_a_withdrawal_without_by_records_the_login_name(tmp_path: Path) -> None:
    from famlink.claims import record_due_claims

    path = tmp_path / "wh.duckdb"
    con, marts = new_warehouse(path)
    marts.family("A", "2023-01-10", {"1A": None, "2A": None})
    marts.achieved("2024-01-31", "A", {"1A": "2023-11-01", "2A": "2023-12-01"})
    assert record_due_claims(con, PLAN, d("2024-01-31")).new_claims == 1
    con.close()
    result = subprocess.run([sys.executable, "-m", "famlink", "withdraw", "A", "--warehouse",
                             str(path), "--reason", "audit: attendance was wrong"],
                            capture_output=True, text=True, check=False, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    con = duckdb.connect(str(path), read_only=True)
    who = con.execute("SELECT recorded_by FROM claims.events WHERE event = 'withdrawn'"
                      ).fetchall()
    con.close()
    assert who == [(getpass.getuser(),)]
