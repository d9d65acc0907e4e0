"""The monthly data-matching run, as a Prefect flow.

The flow is only wiring: each step is a function from famlink, matchers, rules
or claims, run as a Prefect task. The same steps run without Prefect
(``run_monthly_local``) when no Prefect server is configured, so a one-off run
from the command line does not pay for starting a temporary server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

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
)
from famlink.report import RunFigures, collect_run_figures
from famlink.warehouse import build_then_publish, check_run, remember_plan, writer_lock

Call = Callable[..., Any]


@dataclass
class MonthlyRunSummary(RunSummary):
    """A run's summary with the figures read from the built warehouse before publishing."""

    figures: RunFigures | None = None
    back_run: bool = False


def monthly_steps(request: RunRequest, call: Call, back_run: bool = False) -> MonthlyRunSummary:
    """The run's table of contents; ``call`` runs one step (as a task or directly).

    The writer lock is held from the checks to the publish; a back-run builds
    in the copy and discards it.
    """
    seconds: dict[str, float] = {}
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
    return MonthlyRunSummary(request=request, ingest=ingest, linkage=linkage,
                             outcomes=outcomes, claims=claims, step_seconds=seconds,
                             figures=figures, back_run=back_run)


def timed(call: Call, seconds: dict[str, float], request: RunRequest) -> Call:
    """Run each step through ``call``, noting its wall time and saying when it starts."""
    def run(step: Call, *args: Any) -> Any:
        if request.progress:
            request.progress(f"step {step.__name__.replace('_', ' ')}")
        started = time.perf_counter()
        result = call(step, *args)
        seconds[step.__name__] = time.perf_counter() - started
        return result
    return run


def _as_task(step: Call, *args: Any) -> Any:
    return task(step, name=step.__name__.replace("_", "-"), cache_policy=NO_CACHE)(*args)


@flow(name="famlink-monthly-run", log_prints=True)
def monthly_run(extracts: Path, warehouse: Path, plan: str,
                as_of: date | None = None, back_run: bool = False,
                accept_shrink: tuple[str, ...] = ()) -> MonthlyRunSummary:
    """Ingest, link, evaluate outcomes and record claims for one council and month.

    A scheduled run passes no as_of: it runs as at the day it starts.
    """
    request = RunRequest(extracts=Path(extracts), warehouse=Path(warehouse), plan=plan,
                         as_of=as_of or date.today(), accept_shrink=tuple(accept_shrink))
    return monthly_steps(request, call=_as_task, back_run=back_run)


def run_monthly_local(request: RunRequest, back_run: bool = False) -> MonthlyRunSummary:
    """The same steps, called directly (no Prefect API needed)."""
    return monthly_steps(request, call=lambda step, *args: step(*args), back_run=back_run)
