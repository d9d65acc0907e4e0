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
                  "run_id", "plan", "as_of", "run_recorded_at", "produced_at", "problem_names"]

# famlink rejects: the contract's five columns, then severity (rejected | flagged)
REJECTS_COLUMNS = ["month", "file", "row_number", "column", "reason", "severity"]

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


def _withdrawn_since(con: duckdb.DuckDBPyConnection,
                     as_of: date) -> tuple[datetime | None, list[tuple]]:
    """Withdrawals recorded since the last return: after the latest run at an earlier as-of.

    The return for the previous run date was produced after that run, so a
    withdrawal recorded later is news to finance; with no earlier run, every
    withdrawal is listed. A claim made at an earlier as-of was in an earlier
    return (paid, so repayable); one made at this as-of was never returned.
    """
    row = con.execute("SELECT max(recorded_at) FROM claims.runs WHERE as_of < ?",
                      [as_of]).fetchone()
    since = row[0] if row else None
    rows = con.execute(
        """
        SELECT family_id, claim_type, as_of, run_id, withdrawn_at, withdrawn_by,
               withdrawn_reason
        FROM claims.ledger
        WHERE status = 'withdrawn' AND as_of <= ?
          AND (CAST(? AS TIMESTAMP) IS NULL OR withdrawn_at >= ?)
        ORDER BY withdrawn_at, family_id
        """,
        [as_of, since, since],
    ).fetchall()
    return since, rows


def _stem(plans: list[str], as_of: date) -> str:
    return f"claims_return_{'_'.join(plans)}_{as_of.isoformat()}"


def _private_write(path: Path, data: Any) -> None:
    """Save an openpyxl workbook owner-only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    with open(fd, "wb") as fh:
        data.save(fh)


DATE_FORMAT = "dd/mm/yyyy"
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
MONEY_FORMAT = "£#,##0"
TOTALS_COLUMNS = ["item", "value"]


def write_return(warehouse: Path, as_of: date, out_dir: Path) -> list[Path]:
    """The return the council submits: claim rows (CSV, XLSX) and its totals (CSV, XLSX).

    Each row names the run that recorded it, so every payment line traces back
    to a run, a plan and an as-of date in the ledger. The CSV holds claim rows
    only (a reader summing a column gets the claims, nothing else); the totals
    go to ``<stem>_totals.csv`` and to the workbook's Summary sheet, where they
    are formulas over the Claims, Held and Withdrawals sheets.
    """
    con = _open(warehouse)
    try:
        rows = _claims_at(con, as_of)
        held = _held_at(con, as_of)
        since, withdrawn = _withdrawn_since(con, as_of)
        run_plans = sorted(r[0] for r in con.execute(
            "SELECT DISTINCT plan FROM claims.runs WHERE as_of = ?", [as_of]).fetchall())
    finally:
        con.close()
    from rules.national import name_problems

    produced_at = datetime.now().replace(microsecond=0)
    plans = sorted({r[5] for r in rows}) or run_plans or ["none"]  # no claims: the run's plan
    run_ids = sorted({int(r[4]) for r in rows})
    n_ssp = sum(1 for r in rows if r[1] == "SSP")
    n_ce = sum(1 for r in rows if r[1] == "CE")
    repayable = [w for w in withdrawn if w[2] < as_of]

    out_dir = make_private_dir(Path(out_dir))
    stem = _stem(plans, as_of)
    csv_path, xlsx_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.xlsx"
    totals_path = out_dir / f"{stem}_totals.csv"

    # (value, kind) per cell: kind drives the XLSX type and format
    claim_lines = [
        [fam, ctype, achieved, problems, name_problems(problems, plan), PAYMENT_GBP, run_id,
         plan, run_as_of, recorded, produced_at]
        for fam, ctype, achieved, problems, run_id, plan, run_as_of, recorded in rows
    ]
    write_safe_csv(csv_path, RETURN_COLUMNS, (
        [fam, ctype, achieved.isoformat(), problems, pay, run_id, plan, run_as_of.isoformat(),
         recorded.isoformat(sep=" ") if recorded else "", produced.isoformat(sep=" "), names]
        for fam, ctype, achieved, problems, names, pay, run_id, plan, run_as_of, recorded,
        produced in claim_lines))
    totals = [
        ("plan", ";".join(plans)), ("as_of", as_of.isoformat()),
        ("run_ids", ";".join(str(r) for r in run_ids)),
        ("claims_ssp", n_ssp), ("claims_ce", n_ce), ("claims", len(rows)),
        ("payment_per_claim_gbp", PAYMENT_GBP), ("total_claimed_gbp", len(rows) * PAYMENT_GBP),
        ("held_families", len(held)), ("held_back_gbp", len(held) * PAYMENT_GBP),
        ("withdrawals_since", since.isoformat(sep=" ") if since else ""),
        ("withdrawals", len(withdrawn)), ("repayable_gbp", len(repayable) * PAYMENT_GBP),
        ("produced_at", produced_at.isoformat(sep=" ")),
    ]
    write_safe_csv(totals_path, TOTALS_COLUMNS, totals)

    held_lines = [[fam, why, PAYMENT_GBP, run_id, plan, as_of, recorded]
                  for fam, why, run_id, plan, recorded in held]
    withdrawn_lines = [
        [fam, ctype, claimed_as_of, run_id, at, by, why,
         "yes" if claimed_as_of < as_of else "no",
         PAYMENT_GBP if claimed_as_of < as_of else 0]
        for fam, ctype, claimed_as_of, run_id, at, by, why in withdrawn
    ]
    wb = _workbook(as_of, plans, run_ids, produced_at, since, claim_lines, held_lines,
                   withdrawn_lines)
    _private_write(xlsx_path, wb)
    return [csv_path, xlsx_path, totals_path]


CLAIM_SHEET_COLUMNS = [
    ("family_id", 16, None), ("claim_type", 10, None), ("achieved_on", 12, DATE_FORMAT),
    ("problems", 10, None), ("problem_names", 48, None), ("payment_gbp", 12, MONEY_FORMAT),
    ("run_id", 8, None), ("plan", 20, None), ("as_of", 12, DATE_FORMAT),
    ("run_recorded_at", 17, DATETIME_FORMAT), ("produced_at", 17, DATETIME_FORMAT),
]
HELD_SHEET_COLUMNS = [
    ("family_id", 16, None), ("would_contradict", 48, None),
    ("value_held_back_gbp", 14, MONEY_FORMAT), ("run_id", 8, None), ("plan", 20, None),
    ("as_of", 12, DATE_FORMAT), ("run_recorded_at", 17, DATETIME_FORMAT),
]
WITHDRAWN_SHEET_COLUMNS = [
    ("family_id", 16, None), ("claim_type", 10, None), ("claimed_as_of", 12, DATE_FORMAT),
    ("claim_run_id", 10, None), ("withdrawn_at", 17, DATETIME_FORMAT),
    ("withdrawn_by", 16, None), ("reason", 40, None), ("in_earlier_return", 10, None),
    ("repayable_gbp", 12, MONEY_FORMAT),
]


def _table_sheet(wb: Any, title: str, columns: list[tuple[str, int, str | None]],
                 lines: list[list[Any]]) -> str:
    """One sheet per table: a bold frozen header with a filter, typed and formatted cells.

    Text from the data is stored as text (never a formula, whatever it starts
    with). Returns the last data row's range end (for the Summary formulas).
    """
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title)
    ws.append([c[0] for c in columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for line in lines:
        ws.append(line)
        for cell, (_, _, fmt) in zip(ws[ws.max_row], columns, strict=True):
            if isinstance(cell.value, str):
                cell.data_type = "s"       # text, never a formula
            elif fmt:
                cell.number_format = fmt
    last = get_column_letter(len(columns))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{last}{max(ws.max_row, 1)}"
    for i, (_, width, _) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    return str(max(len(lines) + 1, 2))


def _workbook(as_of: date, plans: list[str], run_ids: list[int], produced_at: datetime,
              since: datetime | None, claim_lines: list[list[Any]],
              held_lines: list[list[Any]], withdrawn_lines: list[list[Any]]) -> Any:
    """Summary (formulas), Claims, Held for review and Withdrawals sheets."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    summary = wb.active
    assert summary is not None
    summary.title = "Summary"
    c_end = _table_sheet(wb, "Claims", CLAIM_SHEET_COLUMNS, claim_lines)
    h_end = _table_sheet(wb, "Held for review", HELD_SHEET_COLUMNS, held_lines)
    w_end = _table_sheet(wb, "Withdrawals", WITHDRAWN_SHEET_COLUMNS, withdrawn_lines)
    claims, held, wdr = "Claims!", "'Held for review'!", "Withdrawals!"
    items: list[tuple[str, Any, str | None]] = [
        ("Troubled Families results claim return", None, None),
        ("Outcomes plan", ", ".join(plans), None),
        ("As-of", as_of, DATE_FORMAT),
        ("Run id(s)", ", ".join(str(r) for r in run_ids) or "none", None),
        ("Produced at", produced_at, DATETIME_FORMAT),
        ("Claims (SSP)", f'=COUNTIF({claims}B2:B{c_end},"SSP")', None),
        ("Claims (CE)", f'=COUNTIF({claims}B2:B{c_end},"CE")', None),
        ("Claims (total)", f"=COUNTA({claims}A2:A{c_end})", None),
        ("Payment per claim", PAYMENT_GBP, MONEY_FORMAT),
        ("Total claimed", f"=SUM({claims}F2:F{c_end})", MONEY_FORMAT),
        ("Held for review (families, not claimed)", f"=COUNTA({held}A2:A{h_end})", None),
        ("Held back (not claimed)", f"=SUM({held}C2:C{h_end})", MONEY_FORMAT),
        ("Withdrawals since the last return's run", since or "no earlier run",
         DATETIME_FORMAT if since else None),
        ("Withdrawals (claims)", f"=COUNTA({wdr}A2:A{w_end})", None),
        ("Repayable (claimed in an earlier return)", f"=SUM({wdr}I2:I{w_end})", MONEY_FORMAT),
    ]
    bold = Font(bold=True)
    for label, value, fmt in items:
        summary.append([label, value])
        summary.cell(row=summary.max_row, column=1).font = bold
        cell = summary.cell(row=summary.max_row, column=2)
        if isinstance(value, str) and not value.startswith("="):
            cell.data_type = "s"
        if fmt:
            cell.number_format = fmt
    summary.cell(row=1, column=1).font = Font(bold=True, size=13)
    summary.column_dimensions["A"].width = 42
    summary.column_dimensions["B"].width = 22
    return wb
