"""The steps of the monthly run as plain functions over a warehouse connection.

Each step takes the connection and the run request and returns a small summary;
``flows/monthly.py`` wires them together (as Prefect tasks or directly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from famlink.contract import PLANS
from famlink.ingest.loading import IngestSummary, ingest_drop
from famlink.progress import Progress, RunProgress
from transforms import create_staging_views


@dataclass(frozen=True)
class RunRequest:
    """One run's inputs; ``progress`` hears each step, file and stage (famlink.progress)."""

    extracts: Path
    warehouse: Path
    plan: str
    as_of: date
    progress: Progress | None = field(default=None, compare=False)
    accept_shrink: tuple[str, ...] = ()
    relink_all: bool = False   # link every record afresh (learn the model again), not only new
    # score every pair with the kept model (what an incremental run must equal; for tests)
    rescore_all: bool = False

    @property
    def as_of_month(self) -> str:
        return self.as_of.strftime("%Y-%m")

    def __post_init__(self) -> None:
        if self.plan not in PLANS:
            raise ValueError(f"unknown plan {self.plan!r}: choose one of {', '.join(PLANS)}")


@dataclass
class RunSummary:
    request: RunRequest
    ingest: IngestSummary
    linkage: Any = None
    outcomes: Any = None
    claims: Any = None
    step_seconds: dict[str, float] = field(default_factory=dict)


def ingest_extracts(con: duckdb.DuckDBPyConnection, request: RunRequest) -> IngestSummary:
    """Load every month folder up to the as-of month that is not loaded yet."""
    return ingest_drop(con, request.extracts, request.as_of_month,
                       progress=_counting_files(request), as_of=request.as_of,
                       accept_shrink=request.accept_shrink)


FILE_LOADING = re.compile(r"\d{4}-\d{2}/")   # how ingest_drop names the file it loads


def _counting_files(request: RunRequest) -> Progress | None:
    """For a progress display: the files of the drop folder up to the as-of month, each
    one an item as it loads (files already loaded are skipped without a word)."""
    progress = request.progress
    if not isinstance(progress, RunProgress) or not Path(request.extracts).is_dir():
        return progress
    from famlink.ingest.drop import list_drop

    listing = list_drop(Path(request.extracts), request.as_of_month)
    progress.expect(sum(len(files) for files in listing.files.values()))

    def say(message: str) -> None:
        if FILE_LOADING.match(message):
            progress.advance(message)
        else:
            progress(message)
    return say


def build_staging(con: duckdb.DuckDBPyConnection, request: RunRequest) -> list[str]:
    """Staging views: snapshot and delta semantics applied, as at the as-of month
    (the run's parameters are written first: the views read the month from them).
    The plan is the warehouse's when it holds one (``famlink ingest`` names none)."""
    from famlink.warehouse import warehouse_plan
    from rules.engine import record_run_parameters

    record_run_parameters(con, warehouse_plan(con) or request.plan, request.as_of)
    return create_staging_views(con)


def link_people_and_households(con: duckdb.DuckDBPyConnection, request: RunRequest) -> Any:
    """Attach every source record to a person, and police incidents to households."""
    from matchers.linkage import link_warehouse

    return link_warehouse(con, progress=request.progress, relink_all=request.relink_all,
                          rescore_all=request.rescore_all)


def evaluate_plan_outcomes(con: duckdb.DuckDBPyConnection, request: RunRequest) -> Any:
    """Each family's identified problems and their outcome status under the plan."""
    from rules.engine import evaluate_outcomes

    return evaluate_outcomes(con, request.plan, request.as_of)


def report_linkage(request: RunRequest) -> Path:
    """The published warehouse's linkage report, beside it in reports/ (owner-only).

    A step of the run (not of the command line) so that a run under Prefect
    writes the same report as one from ``famlink run``.
    """
    from famlink.warehouse import connect, make_private, make_private_dir
    from matchers.report import write_linkage_report

    out = make_private_dir(request.warehouse.resolve().parent / "reports") / (
        f"linkage_{request.as_of.isoformat()}.html")
    con = connect(request.warehouse, read_only=True)
    try:
        return make_private(write_linkage_report(con, out))
    finally:
        con.close()


def record_claims(con: duckdb.DuckDBPyConnection, request: RunRequest) -> Any:
    """Claims due at this run, written to the ledger; never a family twice."""
    from famlink.claims import record_due_claims

    return record_due_claims(con, request.plan, request.as_of)


def publish_analyst_layer(con: duckdb.DuckDBPyConnection, request: RunRequest) -> Any:
    """The analyst views (pseudonymous keys, no personal data) and the data dictionary."""
    from famlink.analyst import create_analyst_views
    from famlink.dictionary import apply_dictionary

    names = create_analyst_views(con)
    apply_dictionary(con)
    return names
