"""Files that leave the warehouse: the claim list and the council's return.

Both read only the ledger, never the marts, so what is sent is exactly what
was recorded (and frozen) at the run, whatever later runs have rebuilt. A
withdrawn claim is left out of both: it is not to be paid.

Cells that come from the data are neutralised before they leave: a value that
starts like a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) is
prefixed with ``'`` in CSV and stored as text in XLSX, so opening a return in
a spreadsheet never runs what a partner's file put in a family_id. Files are
written owner-only.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from famlink.claims.ledger import has_ledger
from famlink.warehouse import FILE_MODE, make_private_dir
from rules.national import load_national

PAYMENT_GBP = load_national().results_payment_gbp  # rules/national.yaml
CLAIMS_COLUMNS = ["family_id", "claim_type", "achieved_on", "problems"]
RETURN_COLUMNS = ["family_id", "claim_type", "achieved_on", "problems", "payment_gbp",
                  "run_id", "plan", "as_of", "run_recorded_at", "produced_at"]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class NoRunError(ValueError):
    """No run was recorded at the date asked for."""


def csv_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: ``'`` before a formula-like start."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_safe_csv(out: Path, header: list[str], rows: Iterable[Iterable[Any]]) -> int:
    """Write a CSV owner-only with every cell passed through ``csv_safe``; rows written."""
    out = Path(out)
    make_private_dir(out.parent)
    count = 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    with open(fd, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([csv_safe(v) for v in row])
            count += 1
    return count


def _open(warehouse: Path) -> duckdb.DuckDBPyConnection:
    from famlink.warehouse import connect

    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist")
    return connect(warehouse, read_only=True)


def run_dates(con: duckdb.DuckDBPyConnection) -> list[date]:
    """The as-of dates that have a recorded run, oldest first."""
    if not has_ledger(con):
        return []
    return [r[0] for r in con.execute(
        "SELECT DISTINCT as_of FROM claims.runs ORDER BY as_of").fetchall()]


def require_run(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """Raise ``NoRunError`` listing the dates that have runs, unless ``as_of`` has one."""
    dates = run_dates(con)
    if as_of not in dates:
        raise NoRunError(f"no run at {as_of}; runs were recorded at: "
                         + (", ".join(d.isoformat() for d in dates) if dates else "none yet"))


def _claims_at(con: duckdb.DuckDBPyConnection, as_of: date) -> list[tuple]:
    """Live (not withdrawn) claims recorded by runs at ``as_of``, one per family."""
    require_run(con, as_of)
    return con.execute(
        """
        SELECT l.family_id, l.claim_type, l.achieved_on, coalesce(l.problems, ''),
               l.run_id, l.plan, l.as_of, r.recorded_at
        FROM claims.ledger AS l LEFT JOIN claims.runs AS r USING (run_id)
        WHERE l.as_of = ? AND l.status = 'claimed'
        ORDER BY l.family_id
        """,
        [as_of],
    ).fetchall()


def _held_at(con: duckdb.DuckDBPyConnection, as_of: date) -> list[tuple]:
    """Families held for review by the latest run at ``as_of``: not claimed, not paid."""
    from famlink.claims.eligibility import _table_exists

    if not _table_exists(con, "claims.held_pairs"):
        return []
    return con.execute(
        """
        SELECT h.family_id, string_agg(DISTINCT h.indicator || ' (' || h.pair_id || ')', '; '
                                       ORDER BY h.indicator || ' (' || h.pair_id || ')'),
               r.run_id, r.plan, r.recorded_at
        FROM claims.held_pairs AS h JOIN claims.runs AS r USING (run_id)
        WHERE r.run_id = (SELECT max(run_id) FROM claims.runs WHERE as_of = ?)
        GROUP BY ALL ORDER BY h.family_id
        """,
        [as_of],
    ).fetchall()


def write_claims_csv(warehouse: Path, as_of: date, out: Path) -> int:
    """``famlink claims``: the claims recorded by the run(s) at ``as_of``; returns rows written.

    Opens the warehouse read-only, so it can run while analysts read it. A date
    with no run raises ``NoRunError`` (naming the dates that have runs).
    """
    con = _open(warehouse)
    try:
        rows = _claims_at(con, as_of)
    finally:
        con.close()
    return write_safe_csv(out, CLAIMS_COLUMNS, (
        [family_id, claim_type, achieved_on.isoformat(), problems]
        for family_id, claim_type, achieved_on, problems, *_ in rows))


def write_return(warehouse: Path, as_of: date, out_dir: Path) -> list[Path]:
    """The return the council submits (CSV and XLSX): one row per claim, with totals.

    Each row names the run that recorded it, so every payment line traces back
    to a run, a plan and an as-of date in the ledger.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    con = _open(warehouse)
    try:
        rows = _claims_at(con, as_of)
        held = _held_at(con, as_of)
    finally:
        con.close()
    produced_at = datetime.now().replace(microsecond=0)
    plans = sorted({r[5] for r in rows}) or ["none"]
    run_ids = sorted({int(r[4]) for r in rows})
    n_ssp = sum(1 for r in rows if r[1] == "SSP")
    n_ce = sum(1 for r in rows if r[1] == "CE")
    total = len(rows) * PAYMENT_GBP

    out_dir = make_private_dir(Path(out_dir))
    stem = f"claims_return_{'_'.join(plans)}_{as_of.isoformat()}"
    csv_path, xlsx_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.xlsx"

    lines = [
        [fam, ctype, achieved.isoformat(), problems, PAYMENT_GBP, run_id, plan,
         run_as_of.isoformat(), recorded.isoformat(sep=" ") if recorded else "",
         produced_at.isoformat(sep=" ")]
        for fam, ctype, achieved, problems, run_id, plan, run_as_of, recorded in rows
    ]
    total_line = ["TOTAL", f"SSP {n_ssp}; CE {n_ce}", "", f"{len(rows)} claims x GBP {PAYMENT_GBP}",
                  total, ";".join(str(r) for r in run_ids), ";".join(plans), as_of.isoformat(),
                  "", produced_at.isoformat(sep=" ")]
    # held families: not claimed (GBP 0), listed so the value held back is seen
    held_lines = [[fam, "HELD FOR REVIEW", "", f"would contradict {why}", 0, run_id, plan,
                   as_of.isoformat(), recorded.isoformat(sep=" ") if recorded else "",
                   produced_at.isoformat(sep=" ")] for fam, why, run_id, plan, recorded in held]
    held_total = ["HELD FOR REVIEW", f"{len(held)} families", "",
                  f"GBP {len(held) * PAYMENT_GBP} held back (not claimed)", 0, "", "",
                  as_of.isoformat(), "", produced_at.isoformat(sep=" ")]
    write_safe_csv(csv_path, RETURN_COLUMNS,
                   [*lines, total_line, *((*held_lines, held_total) if held_lines else ())])

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Return"
    bold = Font(bold=True)
    header = [
        ("Troubled Families results claim return", ""),
        ("Outcomes plan", ", ".join(plans)),
        ("As-of", as_of.isoformat()),
        ("Run id(s)", ", ".join(str(r) for r in run_ids) or "none"),
        ("Produced at", produced_at.isoformat(sep=" ")),
        ("Claims (SSP)", n_ssp),
        ("Claims (CE)", n_ce),
        ("Claims (total)", len(rows)),
        ("Payment per claim (GBP)", PAYMENT_GBP),
        ("Total claimed (GBP)", total),
        ("Held for review (families, not claimed)", len(held)),
        ("Held back (GBP)", len(held) * PAYMENT_GBP),
    ]
    for label, value in header:
        ws.append([label, value])
        ws.cell(row=ws.max_row, column=1).font = bold
    ws.append([])
    ws.append(RETURN_COLUMNS)
    for cell in ws[ws.max_row]:
        cell.font = bold
    for line in lines:
        ws.append(line)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"      # text, never a formula, whatever it starts with
    ws.append(total_line)
    for cell in ws[ws.max_row]:
        cell.font = bold
    for line in held_lines:
        ws.append(line)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    if held_lines:
        ws.append(held_total)
    for col, width in zip("ABCDEFGHIJ", (16, 16, 12, 22, 12, 8, 22, 12, 20, 20), strict=True):
        ws.column_dimensions[col].width = width
    fd = os.open(xlsx_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    with open(fd, "wb") as fh:
        wb.save(fh)
    return [csv_path, xlsx_path]
