"""What a finished run prints: read from the warehouse the run built.

The figures are read from the built file just before it is published (the
same file an analyst will open), so printing needs no database afterwards and
cannot fail a run that has already published. A back-run reads them from its
copy before the copy is discarded. Every value that comes from the data is
escaped before rich sees it: an indicator code such as ``9[/red]`` is shown as
it is, never read as markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from famlink.contract import load_indicators

console = Console()


@dataclass
class RunFigures:
    """The run's headline figures, as the built warehouse holds them."""

    families: int = 0
    statuses: list[tuple[str, int]] = field(default_factory=list)
    claims: list[tuple[str, int]] = field(default_factory=list)
    indicators: list[tuple[str, int]] = field(default_factory=list)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list:
    try:
        return con.execute(sql, params or []).fetchall()
    except duckdb.CatalogException:
        return []


def collect_run_figures(con: duckdb.DuckDBPyConnection, request: Any) -> RunFigures:
    """Read the figures from a connection to the built warehouse (its staging views
    are as at the run's as-of, from meta.run_parameters)."""
    families = _rows(con, "SELECT count(*) FROM staging.cohort_families")
    return RunFigures(
        families=int(families[0][0]) if families else 0,
        statuses=_rows(con, """
            SELECT status, count(*) FROM marts.problem_status
            WHERE as_of = ? GROUP BY status ORDER BY status""", [request.as_of]),
        claims=_rows(con, """
            SELECT claim_type, count(*) FROM claims.current_claims
            WHERE as_of = ? GROUP BY claim_type ORDER BY claim_type""", [request.as_of]),
        indicators=_rows(con, """
            SELECT indicator, count(DISTINCT family_id) FROM marts.family_problems
            GROUP BY indicator ORDER BY indicator"""),
    )


def print_run_summary(summary: Any, out: Console | None = None) -> None:
    """The run's table, time per step and warnings (figures from ``summary.figures``)."""
    out = out or console
    request = summary.request
    figures: RunFigures | None = getattr(summary, "figures", None)
    if figures is None:                       # a summary made without the monthly flow
        con = duckdb.connect(str(request.warehouse), read_only=True)
        try:
            figures = collect_run_figures(con, request)
        finally:
            con.close()
    back_run = bool(getattr(summary, "back_run", False))
    title = f"Run {escape(request.plan)} as at {request.as_of}" + (
        " (back-run: evaluated, nothing recorded)" if back_run else "")
    table = Table(title=title, title_justify="left", show_header=False,
                  min_width=len(title) + 4)   # the title never wraps: it names plan and date
    table.add_row("families in the cohort", str(figures.families))
    for status, count in figures.statuses:
        table.add_row(f"identified problems {escape(str(status))}", str(count))
    verb = "would be recorded" if back_run else "recorded"
    for claim_type, count in figures.claims:
        table.add_row(f"claims {escape(str(claim_type))} {verb} at this date", str(count))
    new = getattr(summary.claims, "new_claims", None)
    if new is not None:
        table.add_row("new claims this run would record" if back_run
                      else "new claims at this run", str(new))
    out.print(table)
    if summary.step_seconds:
        out.print("time per step: " + ", ".join(
            f"{name.replace('_', ' ')} {secs:.1f}s" for name, secs in summary.step_seconds.items()),
            highlight=False)
    known = load_indicators().get(request.plan, {})
    for code, families in figures.indicators:
        if code not in known:
            out.print(f"[yellow]warning[/] indicator {escape(str(code))} ({families} families) is "
                      f"not an indicator of the {request.plan} plan: its problems cannot be "
                      f"evaluated and block those families' SSP claims", highlight=False)
    if back_run:
        out.print(f"back-run: the published warehouse {escape(str(request.warehouse.resolve()))} "
                  "was left untouched", highlight=False)
    else:
        out.print(f"warehouse: {escape(str(request.warehouse.resolve()))}", highlight=False)
    run_report = getattr(summary, "run_report", None)
    if run_report is not None:
        out.print(f"run report: {escape(str(run_report))}", highlight=False, soft_wrap=True)
