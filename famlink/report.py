"""What a finished run prints: read back from the published warehouse.

Reading the published file (not the step summaries) means the figures shown
are the figures an analyst will find when they open the warehouse.
"""

from __future__ import annotations

from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from famlink.contract import load_indicators

console = Console()


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list:
    try:
        return con.execute(sql, params or []).fetchall()
    except duckdb.CatalogException:
        return []


def print_run_summary(summary: Any) -> None:
    request = summary.request
    con = duckdb.connect(str(request.warehouse), read_only=True)
    try:
        con.execute(f"SET VARIABLE as_of_month = '{request.as_of_month}'")
        families = _rows(con, "SELECT count(*) FROM staging.cohort_families")
        statuses = _rows(con, """
            SELECT status, count(*) FROM marts.problem_status
            WHERE as_of = ? GROUP BY status ORDER BY status""", [request.as_of])
        codes = _rows(con, """
            SELECT indicator, count(DISTINCT family_id) FROM marts.family_problems
            GROUP BY indicator ORDER BY indicator""")
        claims = _rows(con, """
            SELECT claim_type, count(*) FROM claims.current_claims
            WHERE as_of = ? GROUP BY claim_type ORDER BY claim_type""", [request.as_of])
    finally:
        con.close()
    table = Table(title=f"Run {request.plan} as at {request.as_of}", title_justify="left",
                  show_header=False)
    table.add_row("families in the cohort", str(families[0][0] if families else 0))
    for status, count in statuses:
        table.add_row(f"identified problems {status}", str(count))
    for claim_type, count in claims:
        table.add_row(f"claims {claim_type} recorded at this date", str(count))
    new = getattr(summary.claims, "new_claims", None)
    if new is not None:
        table.add_row("new claims at this run", str(new))
    console.print(table)
    if summary.step_seconds:
        console.print("time per step: " + ", ".join(
            f"{name.replace('_', ' ')} {secs:.1f}s" for name, secs in summary.step_seconds.items()),
            highlight=False)
    known = load_indicators().get(request.plan, {})
    for code, families in codes:
        if code not in known:
            console.print(f"[yellow]warning[/] indicator {code} ({families} families) is not an "
                          f"indicator of the {request.plan} plan: its problems cannot be "
                          f"evaluated and block those families' SSP claims", highlight=False)
    console.print(f"warehouse: {request.warehouse.resolve()}")
