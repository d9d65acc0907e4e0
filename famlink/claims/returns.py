"""Files that leave the warehouse: the claim list and the council's return.

Both read only the ledger, never the marts, so what is sent is exactly what
was recorded (and frozen) at the run, whatever later runs have rebuilt. A
withdrawn claim is left out of both: it is not to be paid.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import duckdb

from famlink.claims.ledger import has_ledger
from rules.national import load_national

PAYMENT_GBP = load_national().results_payment_gbp  # rules/national.yaml
CLAIMS_COLUMNS = ["family_id", "claim_type", "achieved_on", "problems"]
RETURN_COLUMNS = ["family_id", "claim_type", "achieved_on", "problems", "payment_gbp",
                  "run_id", "plan", "as_of", "run_recorded_at", "produced_at"]


def _open(warehouse: Path) -> duckdb.DuckDBPyConnection:
    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist")
    return duckdb.connect(str(warehouse), read_only=True)


def _claims_at(con: duckdb.DuckDBPyConnection, as_of: date) -> list[tuple]:
    """Live (not withdrawn) claims recorded by runs at ``as_of``, one per family."""
    if not has_ledger(con):
        return []
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


def write_claims_csv(warehouse: Path, as_of: date, out: Path) -> int:
    """``famlink claims``: the claims recorded by the run(s) at ``as_of``; returns rows written.

    Opens the warehouse read-only, so it can run while analysts read it. A date
    with no run gives a file with the header only.
    """
    con = _open(warehouse)
    try:
        rows = _claims_at(con, as_of)
    finally:
        con.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CLAIMS_COLUMNS)
        for family_id, claim_type, achieved_on, problems, *_ in rows:
            w.writerow([family_id, claim_type, achieved_on.isoformat(), problems])
    return len(rows)


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
    finally:
        con.close()
    produced_at = datetime.now().replace(microsecond=0)
    plans = sorted({r[5] for r in rows}) or ["none"]
    run_ids = sorted({int(r[4]) for r in rows})
    n_ssp = sum(1 for r in rows if r[1] == "SSP")
    n_ce = sum(1 for r in rows if r[1] == "CE")
    total = len(rows) * PAYMENT_GBP

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
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
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(RETURN_COLUMNS)
        w.writerows(lines)
        w.writerow(total_line)

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
    ws.append(total_line)
    for cell in ws[ws.max_row]:
        cell.font = bold
    for col, width in zip("ABCDEFGHIJ", (16, 16, 12, 22, 12, 8, 22, 12, 20, 20), strict=True):
        ws.column_dimensions[col].width = width
    wb.save(xlsx_path)
    return [csv_path, xlsx_path]
