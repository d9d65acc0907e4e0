"""The monthly data-matching run, as a Prefect flow.

The flow is only wiring: each step is a function from famlink, matchers, rules
or claims, run as a Prefect task. The same steps run without Prefect
(``run_monthly_local``) when no Prefect server is configured, so a one-off run
from the command line does not pay for starting a temporary server.

Under Prefect the whole build (lock, checks, steps, publish, reports) is one
task that retries on transient faults (a file system or DuckDB I/O error):
a failed build leaves the warehouse as it was, so running it again from the
lock is safe, where re-running one step on a half-built copy would not be.
A refused run or an extract that cannot be loaded is never retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from famlink.pipeline import (
    RunRequest,
    RunSummary,
    build_staging,
    evaluate_plan_outcomes,
    ingest_extracts,
    link_people_and_households,
    publish_analyst_layer,
    record_claims,
    report_linkage,
)
from famlink.progress import announce_step
from famlink.report import RunFigures, collect_run_figures
from famlink.run_report import RunReportData, collect_run_report, report_run
from famlink.warehouse import (
    RunRefused,
    build_then_publish,
    check_run,
    remember_plan,
    writer_lock,
)

Call = Callable[..., Any]


@dataclass
class MonthlyRunSummary(RunSummary):
    """A run's summary with the figures read from the built warehouse before publishing."""

    figures: RunFigures | None = None
    back_run: bool = False
    linkage_report: Path | None = None
    run_report: Path | None = None
    report_warnings: list[str] = field(default_factory=list)


def monthly_steps(request: RunRequest, call: Call, back_run: bool = False) -> MonthlyRunSummary:
    """The run's table of contents; ``call`` runs one step (as a task or directly).

    The writer lock is held from the checks to the reports, so the reports are
    of this run's warehouse. The run report's figures are read from the built
    copy before it is published, so a back-run (whose copy is discarded) writes
    its run report too, and no linkage report.
    """
    seconds: dict[str, float] = {}
    warnings: list[str] = []
    step = timed(call, seconds, request)
    with writer_lock(request.warehouse):
        check_run(request.warehouse, request.extracts, request.plan, request.as_of, back_run)
        with build_then_publish(request.warehouse, publish=not back_run) as con:
            remember_plan(con, request.plan)
            ingest = step(ingest_extracts, con, request)
            step(build_staging, con, request)
            linkage = step(link_people_and_households, con, request)
            outcomes = step(evaluate_plan_outcomes, con, request)
            claims = step(record_claims, con, request)
            step(publish_analyst_layer, con, request)
            figures = collect_run_figures(con, request)
            report_data = _read_report_figures(con, request, back_run, warnings)
        summary = MonthlyRunSummary(request=request, ingest=ingest, linkage=linkage,
                                    outcomes=outcomes, claims=claims, step_seconds=seconds,
                                    figures=figures, back_run=back_run,
                                    report_warnings=warnings)
        if not back_run:
            try:
                summary.linkage_report = step(report_linkage, request)
            except Exception as exc:  # noqa: BLE001  (the run is published: say so, keep it)
                summary.report_warnings.append(
                    f"the run was published but its linkage report could not be written "
                    f"({type(exc).__name__}); a run at the same as-of writes it (and records "
                    "nothing new)")
        if report_data is not None:
            try:
                summary.run_report = step(report_run, request, report_data)
            except Exception as exc:  # noqa: BLE001  (the run is published: say so, keep it)
                summary.report_warnings.append(
                    f"the run report could not be written ({type(exc).__name__})")
    return summary


def _read_report_figures(con: duckdb.DuckDBPyConnection, request: RunRequest, back_run: bool,
                         warnings: list[str]) -> RunReportData | None:
    """The run report's figures from the built copy; a failure costs the report, not the run."""
    try:
        return collect_run_report(con, request, back_run)
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"the run report's figures could not be read ({type(exc).__name__}): "
                        "no run report was written")
        return None


def timed(call: Call, seconds: dict[str, float], request: RunRequest) -> Call:
    """Run each step through ``call``, noting its wall time and saying when it starts."""
    def run(step: Call, *args: Any) -> Any:
        announce_step(request.progress, step.__name__.replace("_", " "))
        started = time.perf_counter()
        result = call(step, *args)
        seconds[step.__name__] = time.perf_counter() - started
        return result
    return run


def is_transient(exc: BaseException) -> bool:
    """A fault worth another try: the file system or DuckDB's I/O, not a refusal or bad input."""
    from famlink.ingest.reading import FatalExtractError
    from famlink.warehouse import WarehouseError

    if isinstance(exc, (FatalExtractError, WarehouseError, FileNotFoundError,
                        NotADirectoryError, IsADirectoryError, PermissionError)):
        return False
    return isinstance(exc, (OSError, duckdb.IOException))


def _retry_if_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)


RETRIES = 2
RETRY_DELAY_SECONDS = 30


def _as_task(step: Call, *args: Any) -> Any:
    return task(step, name=step.__name__.replace("_", "-"), cache_policy=NO_CACHE)(*args)


@task(name="build-and-publish", cache_policy=NO_CACHE, retries=RETRIES,
      retry_delay_seconds=RETRY_DELAY_SECONDS, retry_condition_fn=_retry_if_transient)
def build_and_publish(request: RunRequest, back_run: bool) -> MonthlyRunSummary:
    """The whole build as one retried task; its steps are tasks inside it."""
    return monthly_steps(request, call=_as_task, back_run=back_run)


def run_name() -> str:
    """``countywide 2024-12-31``: the plan and the as-of (today for a scheduled run)."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    as_of = parameters.get("as_of") or date.today()
    back = " back-run" if parameters.get("back_run") else ""
    return f"{parameters.get('plan')} {as_of}{back}"


@flow(name="famlink-monthly-run", flow_run_name=run_name, log_prints=True)
def monthly_run(extracts: Path, warehouse: Path, plan: str,
                as_of: date | None = None, back_run: bool = False,
                accept_shrink: tuple[str, ...] = (),
                relink_all: bool = False) -> MonthlyRunSummary:
    """Ingest, link, evaluate outcomes and record claims for one council and month.

    A scheduled run passes no as_of: it runs as at the day it starts. After a
    published run the flow writes the return beside the warehouse and
    publishes the summary, the linkage report and the return as artifacts.
    """
    request = RunRequest(extracts=Path(extracts), warehouse=Path(warehouse), plan=plan,
                         as_of=as_of or date.today(), accept_shrink=tuple(accept_shrink),
                         relink_all=relink_all)
    try:
        summary = build_and_publish(request, back_run)
    except RunRefused as exc:
        if "back-run" in str(exc) and not back_run:
            print("a back-run of the deployment: prefect deployment run "
                  f"famlink-monthly-run/{plan} --param as_of={request.as_of} "
                  "--param back_run=true")
        raise
    for warning in summary.report_warnings:
        print(f"warning: {warning}")
    publish_artifacts(summary)
    return summary


def returns_folder(warehouse: Path) -> Path:
    """Where a scheduled run leaves the return: ``returns/`` beside the warehouse."""
    return Path(warehouse).resolve().parent / "returns"


@task(name="write-return", cache_policy=NO_CACHE, retries=RETRIES,
      retry_delay_seconds=RETRY_DELAY_SECONDS, retry_condition_fn=_retry_if_transient)
def write_run_return(request: RunRequest) -> list[Path]:
    """The return (CSV and XLSX) of this run's as-of; writing it again gives the same claims."""
    from famlink.claims import write_return

    return write_return(request.warehouse, request.as_of, returns_folder(request.warehouse))


def summary_table(summary: MonthlyRunSummary) -> list[dict[str, Any]]:
    """The run summary as rows of figure and value (what ``famlink run`` prints)."""
    figures = summary.figures or RunFigures()
    verb = "would be recorded" if summary.back_run else "recorded"
    rows: list[tuple[str, Any]] = [
        ("plan", summary.request.plan), ("as-of", summary.request.as_of.isoformat()),
        ("families in the cohort", figures.families)]
    rows += [(f"identified problems {status}", count) for status, count in figures.statuses]
    rows += [(f"claims {kind} {verb} at this date", count) for kind, count in figures.claims]
    mode = getattr(summary.linkage, "mode", None)
    if mode is not None:
        rows.append(("linkage", f"{mode}: {summary.linkage.mode_reason}"))
    new = getattr(summary.claims, "new_claims", None)
    if new is not None:
        rows.append(("new claims at this run", new))
    deliveries = summary.ingest.deliveries
    rows += [("rows loaded", sum(d.rows_loaded for d in deliveries)),
             ("rows rejected", sum(d.rows_rejected for d in deliveries)),
             ("values flagged", sum(d.values_flagged for d in deliveries))]
    return [{"figure": name, "value": value} for name, value in rows]


def publish_artifacts(summary: MonthlyRunSummary) -> None:
    """The summary as a table; the run and linkage reports as links, the return as a list."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    request = summary.request
    key = f"famlink-{request.plan}".lower().replace("_", "-")
    create_table_artifact(
        table=summary_table(summary), key=f"{key}-run-summary",
        description=f"Run {request.plan} as at {request.as_of}"
                    + (" (back-run: nothing recorded)" if summary.back_run else ""))

    def report_link(report: str | None, name: str, what: str) -> None:
        if report is not None:
            create_link_artifact(link=Path(report).resolve().as_uri(),
                                 link_text=f"{name} {request.as_of}",
                                 key=f"{key}-{name.replace(' ', '-')}",
                                 description=f"{what} (HTML, beside the warehouse)")

    report_link(summary.run_report, "run report",
                "What this run loaded, linked, found and claimed")
    if summary.back_run:
        return
    report_link(summary.linkage_report, "linkage report", "Linkage quality of this run")
    paths = write_run_return(request)
    create_markdown_artifact(
        key=f"{key}-return",
        description=f"The return for {request.as_of}",
        markdown="\n".join([f"# Return {request.plan} {request.as_of}", ""]
                           + [f"- [{p.name}]({p.resolve().as_uri()})" for p in paths]))


def run_monthly_local(request: RunRequest, back_run: bool = False) -> MonthlyRunSummary:
    """The same steps, called directly (no Prefect API needed)."""
    return monthly_steps(request, call=lambda step, *args: step(*args), back_run=back_run)
