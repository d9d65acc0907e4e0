"""The ``famlink`` command: what a council's data team runs."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import duckdb
import typer
from rich.markup import escape
from rich.table import Table
from typer._click.exceptions import UsageError as TyperUsageError  # typer vendors click
from typer.core import TyperGroup
from typer.exceptions import TyperException

from famlink import __version__
from famlink.contract import PLANS
from famlink.progress import RunProgress, announce_step, for_console
from famlink.review_cli import LOGIN_NAME, review_app
from famlink.terminal import console, err
from famlink.terminal import error as _error

if TYPE_CHECKING:         # the ingest modules load pyarrow: only the commands that read need it
    from famlink.ingest.loading import IngestSummary
    from famlink.ingest.reading import FatalExtractError

PROJECT = Path(__file__).resolve().parents[1]
DEBUG_VARIABLE = "FAMLINK_DEBUG"


class FamlinkGroup(TyperGroup):
    """Every failure of every command ends in one line on stderr and a non-zero exit.

    A usage mistake (a missing option, a mistyped one) exits 2 in one line, not
    a help panel; a refused request or an unreadable file exits 2 naming the
    file; a DuckDB error exits 1 with its class and position but never a value
    from the data; anything else is an internal error: its class and where it
    happened, the traceback only with FAMLINK_DEBUG=1 (a traceback's messages
    can quote personal data).
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TyperUsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise
            where = exc.ctx.command_path if exc.ctx is not None else "famlink"
            raise _error(f"{exc.format_message()} ({where} --help lists the options)",
                         code=exc.exit_code) from None
        except (typer.Exit, typer.Abort, TyperException, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001  (one line for whatever went wrong)
            if os.environ.get(DEBUG_VARIABLE):
                raise
            line, code = failure_line(exc)
            raise _error(line, code=code) from None


app = typer.Typer(add_completion=False, no_args_is_help=True, cls=FamlinkGroup,
                  pretty_exceptions_show_locals=False,
                  help="famlink: monthly data matching for the Supporting Families programme.")
app.add_typer(review_app, name="review")

DATE = "YYYY-MM-DD"
ExtractsOpt = Annotated[Path, typer.Option("--extracts", help="Drop folder with YYYY-MM/ months.")]
WarehouseOpt = Annotated[Path, typer.Option("--warehouse", help="DuckDB warehouse file.")]
AcceptShrinkOpt = Annotated[list[str] | None, typer.Option(
    "--accept-shrink", metavar="MONTH/FILE",
    help="Apply this snapshot although it deletes more keys than guards.yaml allows "
         "(e.g. 2024-12/cohort_members.csv); repeatable.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"famlink {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _famlink(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print famlink's version and exit.")] = False,
) -> None:
    """famlink: monthly data matching for the Supporting Families programme."""


# DuckDB errors whose message comes from the query and the catalogue only (never a value)
QUERY_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException,
                duckdb.PermissionException, duckdb.IOException)
# errors that quote the value they could not convert: shown with the quotes emptied
VALUE_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException)
QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
# DuckDB's refusals of a write or a SET in famlink's read-only, locked session (the message
# names the statement, the database or the option: never data)
REFUSALS = ("which is attached in read-only mode", "the configuration has been locked")
HELD_OPEN = re.compile(r'Could not set lock on file "([^"]+)"')   # another session has it open
LINE_MARK = re.compile(r"LINE (\d+): ")


def duckdb_line(exc: duckdb.Error) -> str:
    """A DuckDB error in one line that never quotes a value from the data.

    Parser, binder and catalogue errors are about the query and are shown as
    DuckDB words them; a conversion error has its quoted literals replaced
    (``Could not convert string '...' to INT32``); any other error (an
    invalid-input error can be a cell's whole value) is named by its class. An
    error about the query's text says where in it (``at line 2, column 6``); one
    raised while reading rows has no position in the text the user typed.
    """
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    kind = first.split(":", 1)[0] if ":" in first else type(exc).__name__
    if isinstance(exc, QUERY_ERRORS):     # raised on the query's own text: where in it
        return first + _position(lines)
    if isinstance(exc, VALUE_ERRORS):
        return QUOTED.sub("'...'", first)
    return f"{kind} (its message is not shown: it can quote a value from the data)"


def _position(lines: list[str]) -> str:
    """`` at line 1, column 8`` from DuckDB's ``LINE 1: ...`` and caret lines."""
    for i, line in enumerate(lines[:-1]):
        mark = LINE_MARK.match(line)
        if mark and "^" in lines[i + 1]:
            column = lines[i + 1].index("^") - mark.end() + 1
            return f" at line {mark.group(1)}, column {max(column, 1)}"
    return ""


def failure_line(exc: BaseException) -> tuple[str, int]:
    """What to print for a failure no command caught, and the exit code."""
    from famlink.ingest.reading import FatalExtractError
    from famlink.warehouse import WarehouseError

    if isinstance(exc, FatalExtractError):
        return f"{exc.path}: {exc.fault}; the warehouse was left exactly as it was", 1
    if isinstance(exc, OSError) and exc.strerror:
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        return f"{' -> '.join(names) or type(exc).__name__}: {exc.strerror}", 2
    if isinstance(exc, duckdb.IOException) and (held := HELD_OPEN.search(str(exc))):
        from famlink.warehouse import open_elsewhere_message

        return open_elsewhere_message(Path(held.group(1)), exc), 1
    if isinstance(exc, duckdb.IOException):      # a file that is not a warehouse, a full disk
        return duckdb_line(exc), 1
    if isinstance(exc, duckdb.Error):     # famlink's own SQL failed: say where, for a ticket
        return f"{duckdb_line(exc)} (in {_where(exc)})", 1
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return validation_line(exc), 2
    if isinstance(exc, WarehouseError) or (
            isinstance(exc, ValueError) and _ours(type(exc).__module__)):
        return str(exc), 2
    return (f"internal error: {type(exc).__name__} at {_where(exc)} ({DEBUG_VARIABLE}=1 "
            "shows the traceback)"), 1


def _ours(module: str) -> bool:
    return module.split(".")[0] in {"famlink", "rules", "matchers", "transforms", "flows"}


def _where(exc: BaseException) -> str:
    """The innermost frame of famlink's own code: ``matchers/linkage.py:120``."""
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(PROJECT) and ".venv" not in path.parts:
            where = f"{path.relative_to(PROJECT)}:{frame.lineno}"
    return where


def _parse_date(value: str, option: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise _error(f"{option} must be a date {DATE}, got {value!r}") from None


def _check_plan(plan: str) -> str:
    if plan not in PLANS:
        raise _error(f"unknown plan {plan!r}; choose one of: {', '.join(PLANS)}")
    return plan


def _check_rule_files(plan: str) -> None:
    """The plan, vocabulary and national rules load: a bad file stops before anything is read."""
    from rules.engine import check_rule_files
    from rules.models import RuleFileError

    try:
        check_rule_files(plan)
    except RuleFileError as exc:
        raise _error(str(exc), code=1) from None


def _check_warehouse_folder(warehouse: Path) -> None:
    """A warehouse in a folder that does not exist is a typo, not a new ledger: refuse it."""
    if not warehouse.parent.is_dir():
        raise _error(f"the folder of --warehouse {warehouse} does not exist: create it first "
                     "(a new warehouse has an empty ledger, so a typo would claim families "
                     "again)")


def _check_extracts_folder(extracts: Path) -> None:
    """The drop folder exists and is a folder: said before any step starts."""
    if not extracts.exists():
        raise _error(f"--extracts {extracts} does not exist")
    if not extracts.is_dir():
        raise _error(f"--extracts {extracts} is not a folder (the drop folder holds "
                     "YYYY-MM/ months)")


def _announce_new_warehouse(warehouse: Path) -> None:
    if not warehouse.exists():
        console.print(f"creating a new warehouse: {escape(str(warehouse.resolve()))}",
                      highlight=False)


@contextmanager
def _printing_after_publish() -> Iterator[None]:
    """Printing must not turn a published run into a failed one: warn and keep exit 0."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001  (the run is published whatever went wrong here)
        err.print(f"[yellow]warning:[/] the run was published but its summary could not be "
                  f"printed in full ({type(exc).__name__})", soft_wrap=True, highlight=False)


def print_ingest(summary: IngestSummary) -> None:
    """Rows read, loaded and rejected per file (months of one file added up)."""
    per_file: dict[str, list] = {}
    for d in summary.deliveries:
        if d.status == "already_loaded":
            continue
        row = per_file.setdefault(d.file, [[], 0, 0, 0, 0, 0])
        row[0].append(d.month)
        row[1] += d.status == "empty"
        for i, value in enumerate((d.rows_read, d.rows_loaded, d.rows_rejected,
                                   d.values_flagged), start=2):
            row[i] += value
    table = Table(title="Deliveries loaded at this run", title_justify="left")
    for name in ("file", "months", "rows read", "loaded", "rejected", "flagged"):
        table.add_column(name, justify="left" if name in {"file", "months"} else "right",
                         no_wrap=name == "file")
    for file, (months, empty, read, loaded, rejected, flagged) in sorted(per_file.items()):
        span = months[0] if len(months) == 1 else f"{months[0]}..{months[-1]} ({len(months)})"
        if empty:
            span += f", {empty} empty"
        table.add_row(escape(file), span, f"{read:,}", f"{loaded:,}", f"{rejected:,}",
                      f"{flagged:,}")
    skipped = sum(d.status == "already_loaded" for d in summary.deliveries)
    if table.row_count:
        console.print(table)
    console.print(f"files loaded: {len(summary.loaded)}; already loaded, skipped: {skipped}; "
                  f"rows loaded: {sum(d.rows_loaded for d in summary.deliveries):,}; "
                  f"rows rejected: {sum(d.rows_rejected for d in summary.deliveries):,}; "
                  f"values flagged: {sum(d.values_flagged for d in summary.deliveries):,}"
                  + (" (famlink rejects lists them)" if any(
                      d.rows_rejected or d.values_flagged for d in summary.deliveries) else ""))
    for label, line in summary.check_lines():
        console.print(f"[yellow]{label}[/] {escape(line)}", highlight=False)
    for d in summary.deliveries:
        for warning in d.warnings:
            console.print(f"[yellow]warning[/] {escape(warning)}", highlight=False)
    for warning in summary.warnings:
        console.print(f"[yellow]warning[/] {escape(warning)}", highlight=False)


@contextmanager
def _user_errors() -> Iterator[None]:
    """A missing file or a refused request is the user's to fix: say so, no traceback."""
    from pydantic import ValidationError

    try:
        yield
    except ValidationError as exc:
        raise _error(validation_line(exc)) from None
    except (FileNotFoundError, ValueError) as exc:
        raise _error(str(exc)) from None


def validation_line(exc: Any, option: bool = False) -> str:
    """A pydantic error as ``field: what is wrong``, never the input it was given."""
    def name(loc: tuple) -> str:
        field = ".".join(map(str, loc))
        return f"--{field.replace('_', '-')}" if option else field
    return "; ".join(f"{name(e['loc'])}: {e['msg']}" for e in exc.errors())


@contextmanager
def _writer_errors() -> Iterator[None]:
    """A busy warehouse, a stale session or a refused run: one line, nothing changed."""
    from famlink.warehouse import WarehouseError

    try:
        yield
    except WarehouseError as exc:
        raise _error(str(exc)) from None


def _fatal(exc: FatalExtractError) -> None:
    raise _error(failure_line(exc)[0], code=1)


@app.command()
def run(
    extracts: ExtractsOpt,
    warehouse: WarehouseOpt,
    plan: Annotated[str, typer.Option("--plan", help=f"One of: {', '.join(PLANS)}.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Run date.", metavar=DATE)],
    prefect: Annotated[bool | None, typer.Option(
        "--prefect/--no-prefect",
        help="Run as a Prefect flow (default: when PREFECT_API_URL is set).")] = None,
    back_run: Annotated[bool, typer.Option(
        "--back-run", help="AS_OF precedes the latest run: evaluate and report, change "
                           "nothing.")] = False,
    accept_shrink: AcceptShrinkOpt = None,
    linkage_backend: Annotated[str | None, typer.Option(
        "--linkage-backend", help="Where person pairs are scored: duckdb (default) or spark "
                                  "(as FAMLINK_LINKAGE_BACKEND; README: Splink on Spark).")] = None,
    relink_all: Annotated[bool, typer.Option(
        "--relink-all", help="Link every record afresh (learn the model again, score every "
                             "pair) instead of only what is new since the last run.")] = False,
) -> None:
    """The monthly run: ingest, link, outcomes under PLAN at AS_OF, record claims."""
    from matchers.spark import check_backend

    try:
        check_backend(linkage_backend)
    except ValueError as exc:
        raise _error(str(exc)) from None
    from famlink.ingest.reading import FatalExtractError
    from famlink.pipeline import RunRequest
    from famlink.report import print_run_summary

    progress = for_console(err)
    request = RunRequest(extracts=extracts, warehouse=warehouse, plan=_check_plan(plan),
                         as_of=_parse_date(as_of, "--as-of"), progress=progress,
                         accept_shrink=tuple(accept_shrink or ()), relink_all=relink_all)
    _check_warehouse_folder(warehouse)
    _check_extracts_folder(extracts)
    _check_rule_files(request.plan)
    use_prefect = bool(os.environ.get("PREFECT_API_URL")) if prefect is None else prefect
    from famlink.warehouse import check_run, writer_lock

    try:
        with _writer_errors(), writer_lock(warehouse):   # before the slow imports: refuse at once
            check_run(warehouse, extracts, plan, request.as_of, back_run)
            if not back_run:
                _announce_new_warehouse(warehouse)
            if use_prefect:
                from flows.monthly import monthly_run

                summary = monthly_run(extracts=extracts, warehouse=warehouse, plan=plan,
                                      as_of=request.as_of, back_run=back_run,
                                      accept_shrink=request.accept_shrink,
                                      relink_all=relink_all)
            else:
                from flows.monthly import run_monthly_local

                with progress:
                    summary = run_monthly_local(request, back_run=back_run)
    except FatalExtractError as exc:
        _fatal(exc)
    with _printing_after_publish():
        print_ingest(summary.ingest)
        print_run_summary(summary, console)
        if summary.claims is not None:
            console.print(f"held for review: {summary.claims.held_for_review} families (GBP "
                          f"{summary.claims.held_gbp:,} held back); famlink review lists them")
        if summary.linkage_report is not None:
            console.print(f"linkage report: {escape(str(summary.linkage_report))}",
                          highlight=False)
        if getattr(summary.linkage, "mode", None):
            how = summary.linkage
            console.print(f"linkage: {how.mode} ({escape(how.mode_reason)})", highlight=False)
        for warning in summary.report_warnings:
            err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True, highlight=False)


@app.command()
def serve(
    extracts: ExtractsOpt,
    warehouse: WarehouseOpt,
    plan: Annotated[str, typer.Option("--plan", help=f"One of: {', '.join(PLANS)}.")],
    cron: Annotated[str, typer.Option(
        "--cron", help="When the monthly run starts (cron, UTC).")] = "0 6 2 * *",
) -> None:
    """Serve the deployment famlink-monthly-run/PLAN on the Prefect server, on CRON."""
    from pydantic import ValidationError

    from famlink.warehouse import check_run

    _check_plan(plan)
    _check_warehouse_folder(warehouse)
    _check_extracts_folder(extracts)
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValidationError:
        raise _error(f"--cron {cron!r} is not a cron schedule (e.g. \"0 6 2 * *\": 06:00 on "
                     "the 2nd of each month)") from None
    from flows.serve import prefect_api_url, serve_monthly

    if not prefect_api_url():
        raise _error("no Prefect server: set PREFECT_API_URL (e.g. "
                     "http://127.0.0.1:4200/api) to the server started by `prefect server start`")
    with _writer_errors():
        check_run(warehouse, extracts, plan, date.today())
    serve_monthly(extracts, warehouse, plan, cron)


@app.command()
def ingest(
    extracts: ExtractsOpt,
    warehouse: WarehouseOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="Load months up to this date's month.",
                                       metavar=DATE)],
    accept_shrink: AcceptShrinkOpt = None,
) -> None:
    """Load and validate deliveries only (no linkage or outcomes)."""
    from famlink.ingest.reading import FatalExtractError
    from famlink.pipeline import RunRequest, build_staging, ingest_extracts
    from famlink.warehouse import build_then_publish

    progress = for_console(err)
    request = RunRequest(extracts=extracts, warehouse=warehouse, plan=PLANS[0],
                         as_of=_parse_date(as_of, "--as-of"), progress=progress,
                         accept_shrink=tuple(accept_shrink or ()))
    _check_warehouse_folder(warehouse)
    _check_extracts_folder(extracts)
    _announce_new_warehouse(warehouse)
    try:
        with _writer_errors(), build_then_publish(warehouse) as con, progress:
            announce_step(progress, "ingest extracts")
            summary = ingest_extracts(con, request)
            announce_step(progress, "build staging")
            build_staging(con, request)
    except FatalExtractError as exc:
        _fatal(exc)
    with _printing_after_publish():
        print_ingest(summary)
        console.print(f"warehouse: {escape(str(warehouse.resolve()))}", highlight=False)


@app.command()
def rejects(
    warehouse: WarehouseOpt,
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
) -> None:
    """Every rejected row and flagged value of every loaded delivery, as CSV.

    Columns: month, file, row_number, column, reason, severity (``rejected``: the
    row was not loaded; ``flagged``: the row loaded with that value treated as missing).
    """
    from famlink.claims.returns import REJECTS_COLUMNS, write_safe_csv
    from famlink.warehouse import connect

    if not warehouse.exists():
        raise _error(f"warehouse {warehouse} does not exist")
    con = connect(warehouse, read_only=True)
    rows = con.execute("""
        SELECT month, file, row_number, "column", reason, severity
        FROM meta.rejects ORDER BY month, file, delivery_id, row_number, "column", reason
    """).fetchall()
    con.close()
    write_safe_csv(out, REJECTS_COLUMNS, rows)
    console.print(f"{len(rows)} rejected rows and flagged values written to "
                  f"{escape(str(out))}", highlight=False)


@app.command()
def claims(
    warehouse: WarehouseOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="The run date whose claims to write.",
                                       metavar=DATE)],
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
) -> None:
    """The claims recorded by the run at AS_OF: family_id, claim_type, achieved_on, problems."""
    from famlink.claims import write_claims_csv
    from famlink.claims.returns import PAYMENT_GBP

    with _user_errors():
        count = write_claims_csv(warehouse, _parse_date(as_of, "--as-of"), out)
    console.print(f"{count} claims (GBP {count * PAYMENT_GBP:,} at GBP {PAYMENT_GBP} each) "
                  f"written to {escape(str(out))}", highlight=False)


@app.command(name="return")
def claims_return(
    warehouse: WarehouseOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="The run date whose claims to return.",
                                       metavar=DATE)],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the CSV and XLSX.")],
) -> None:
    """The payment-by-results return: claim rows (CSV, XLSX) and its totals (CSV, XLSX)."""
    from famlink.claims import write_return

    with _user_errors():
        paths = write_return(warehouse, _parse_date(as_of, "--as-of"), out_dir)
    for path in paths:
        console.print(f"written {escape(str(path))}", highlight=False)


@app.command()
def withdraw(
    family_id: Annotated[str, typer.Argument(help="Family whose claim to withdraw.")],
    warehouse: WarehouseOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why (e.g. audit finding).")],
    by: Annotated[str, typer.Option("--by", help="Who withdraws it (default: your login "
                                                 "name).", metavar="NAME")] = LOGIN_NAME,
) -> None:
    """Withdraw a claim; the ledger keeps its whole history."""
    from famlink.claims import withdraw_claim

    with _user_errors():
        withdraw_claim(warehouse, family_id, reason, by)
    console.print(f"claim for {escape(family_id)} withdrawn", highlight=False)


@app.command()
def explain(
    family_id: Annotated[str, typer.Argument(help="Cohort family reference.")],
    warehouse: WarehouseOpt,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run date (default latest).",
                                              metavar=DATE)] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write an HTML page.")] = None,
) -> None:
    """The audit pack for one family: members, links, problems, evidence, claim."""
    from famlink.claims.explain import explain_family, print_pack

    when = _parse_date(as_of, "--as-of") if as_of else None
    with _user_errors():
        _check_explainable(warehouse, family_id, when)
        pack = explain_family(warehouse, family_id, when, html, quiet=True)
    print_pack(_markup_escaped(pack), console)


def _check_explainable(warehouse: Path, family_id: str, as_of: date | None) -> None:
    """A date with no run, or a family the warehouse has never seen: refuse in one line."""
    from famlink.claims.returns import require_run
    from famlink.warehouse import connect

    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist")
    con = connect(warehouse, read_only=True)
    try:
        if as_of is not None:
            require_run(con, as_of)
        known = False
        for sql in ("SELECT 1 FROM raw.cohort_members WHERE family_id = ? LIMIT 1",
                    "SELECT 1 FROM raw.cohort_families WHERE family_id = ? LIMIT 1",
                    "SELECT 1 FROM claims.events WHERE family_id = ? LIMIT 1"):
            try:
                known = known or con.execute(sql, [family_id]).fetchone() is not None
            except duckdb.CatalogException:
                continue
    finally:
        con.close()
    if not known:
        raise ValueError(f"family {family_id} is not in this warehouse (no cohort delivery or "
                         "claim names it)")


def _markup_escaped(value: Any) -> Any:
    """A copy of an audit pack with every string escaped, so rich prints data as it is."""
    if isinstance(value, str):
        return escape(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{
            f.name: _markup_escaped(getattr(value, f.name))
            for f in dataclasses.fields(value) if f.init})
    if isinstance(value, dict):
        return {k: _markup_escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_markup_escaped(v) for v in value)
    return value


@app.command()
def link(
    left: Annotated[Path, typer.Option("--left", help="CSV: id, first_name, last_name, dob, "
                                                      "sex, postcode[, ...]")],
    right: Annotated[Path, typer.Option("--right", help="CSV with the same columns.")],
    out: Annotated[Path, typer.Option("--out", help="Pairs CSV to write.")],
    threshold: Annotated[float | None, typer.Option(help="Match probability cut-off.")] = None,
) -> None:
    """Person linkage between two files: left_id, right_id, match_probability (the same
    file as left and right deduplicates it); parameters learnt from the files when they
    hold 1,000 rows or more. Pairs a guard stopped (twins, a generation apart, only the
    household agreeing) go to PAIRS_review.csv with the reason."""
    from matchers.pairs import link_files

    with _user_errors():
        summary = link_files(left, right, out, threshold=threshold)
    rows = (f"{summary.left_rows} rows deduplicated" if summary.dedupe else
            f"{summary.left_rows} left rows, {summary.right_rows} right rows")
    console.print(f"{summary.pairs} pairs at match probability >= {summary.threshold} written "
                  f"to {summary.out} ({rows}, {summary.seconds:.1f}s); model: "
                  f"{summary.model_note}")
    twins = (f"; {summary.twins_apart} twin pairs kept apart (two people at one address in "
             "one file)" if summary.twins_apart else "")
    console.print(f"{summary.review} pairs at the threshold stopped by a guard or cluster "
                  f"constraint, for clerical review, written to {summary.review_out} (with "
                  f"the reason){twins}")


@app.command(name="train-linkage")
def train_linkage(
    warehouse: WarehouseOpt,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Model JSON to write (default: person_model_<date>.json beside the "
                      "warehouse).")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Overwrite OUT if it exists (the committed model included).")] = False,
    seed: int = 1,
) -> None:
    """Train the person-linkage model (u-sampling and EM from the committed model) into a
    new file, and print each level's m, u and match weight before and after."""
    from matchers.probabilistic import messages_summary
    from matchers.train import check_out, default_out, summary_lines, train_person_model

    target = out or default_out(warehouse)
    with _user_errors():
        if not Path(warehouse).exists():
            raise FileNotFoundError(f"{warehouse}: no such warehouse")
        check_out(target, replace)
        result = train_person_model(warehouse, target, seed=seed)
    for line in summary_lines(result):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(f"Splink: {messages_summary(result.messages)}", highlight=False,
                  markup=False, soft_wrap=True)
    console.print(f"model written to {result.out}", highlight=False, markup=False)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Drop folder to write.")],
    plan: Annotated[str, typer.Option("--plan")] = "countywide",
    seed: int = 1,
    scale: Annotated[str, typer.Option(help="small or county")] = "small",
    start_month: Annotated[str, typer.Option("--start-month", metavar="YYYY-MM")] = "2023-01",
    months: int = 24,
    residents: int | None = None,
    families: Annotated[int | None, typer.Option("--families")] = None,
    conventions: Annotated[str, typer.Option(
        "--conventions", help="default, or varied: recording conventions drawn per county "
        "(see _truth/manifest.json)")] = "default",
) -> None:
    """Write a synthetic county's monthly extracts (with ground truth in _truth/)."""
    from pydantic import ValidationError

    try:   # a package of its own (generator/): the pipeline never imports it
        from famlink_generator import GeneratorConfig, generate_county
    except ModuleNotFoundError as exc:
        if exc.name != "famlink_generator":
            raise
        raise _error("famlink generate needs the generator package, which is not installed: "
                     "pip install -e ./generator (make venv installs it)", code=1) from None

    if conventions not in ("default", "varied"):
        raise _error(f"--conventions must be default or varied, got {conventions!r}")
    try:
        config = GeneratorConfig(out_dir=out, plan=_check_plan(plan), seed=seed, scale=scale,
                                 start_month=start_month, months=months, residents=residents,
                                 cohort_families=families, conventions=conventions)
    except ValidationError as exc:
        raise _error(validation_line(exc, option=True)) from None
    with for_console(err) as progress:
        summary = generate_county(config, progress=_stages(progress))
    console.print(f"{summary.out_dir}: plan {summary.plan}, seed {summary.seed}, "
                  f"{len(summary.months)} months ({summary.months[0]}..{summary.months[-1]}), "
                  f"{summary.residents:,} residents, "
                  f"{summary.cohort_families:,} cohort families; {summary.files_written:,} files, "
                  f"{summary.rows_written:,} rows, {summary.bytes_written / 1e6:,.1f} MB, "
                  f"{summary.planted_faults} planted faults; ground truth in "
                  f"{summary.out_dir}/_truth/")


def _check_query_as_of(con: duckdb.DuckDBPyConnection, when: date) -> None:
    """The views show the records of the run that built the warehouse (its as-of month
    is in meta.run_parameters, not in the reader's session): another month is refused."""
    try:
        rows = con.execute("SELECT max(as_of) FROM meta.run_parameters").fetchall()
    except duckdb.CatalogException:  # a warehouse no run has built
        rows = []
    built = rows[0][0] if rows else None
    if built is None or f"{built:%Y-%m}" != f"{when:%Y-%m}":
        shown = f"as at {built}" if built else "with no run recorded"
        raise _error(f"--as-of {when}: the warehouse is built {shown}, and its views show "
                     "that run's records; run famlink run --as-of for another month")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A SQL query, e.g. 'FROM meta.deliveries'.")],
    warehouse: WarehouseOpt,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="The as-of the warehouse must be built at (its views show the "
        "records of the run that built it; another month is refused).",
        metavar=DATE)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the result as CSV.")] = None,
    identifiable: Annotated[bool, typer.Option(
        "--identifiable", help="Read every schema, names and identifiers included (only for "
        "staff allowed to see personal data); default: the analyst layer only.")] = False,
) -> None:
    """Query the warehouse read-only (safe while the next run builds).

    By default only the analyst layer (``analyst.*``, pseudonymous, no personal
    data; unqualified names are analyst views). The session cannot write, read
    or attach files, or load extensions: a statement that tries is refused in
    one line.
    """
    from famlink.analyst import QueryRefused, connect_analyst, refuse_outside_analyst
    from famlink.claims.returns import write_safe_csv
    from famlink.warehouse import connect

    when = _parse_date(as_of, "--as-of") if as_of else None
    if not warehouse.exists():
        raise _error(f"warehouse {warehouse} does not exist")
    try:
        con = connect(warehouse, locked=True) if identifiable else connect_analyst(warehouse)
    except duckdb.Error as exc:
        raise _error(failure_line(exc)[0] if HELD_OPEN.search(str(exc)) else
                     f"cannot open {warehouse} read-only: {duckdb_line(exc)}", code=1) from None
    try:
        if not identifiable:
            refuse_outside_analyst(con, sql)
        if when:
            _check_query_as_of(con, when)
        relation = con.sql(sql)
        if relation is None:
            raise _error("query refused: only a query that returns rows can run here")
        if out:
            count = write_safe_csv(out, list(relation.columns), relation.fetchall())
            console.print(f"{count} rows written to {escape(str(out))}", highlight=False)
        else:
            console.print(str(relation), markup=False, highlight=False)
    except QueryRefused as exc:
        raise _error(f"query refused: {_first_line(exc)}") from None
    except duckdb.PermissionException as exc:
        raise _error(f"query refused: {duckdb_line(exc)}") from None
    except duckdb.InvalidInputException as exc:
        if any(refusal in str(exc) for refusal in REFUSALS):
            raise _error(f"query refused: {_first_line(exc)}") from None
        raise _error(f"query failed: {duckdb_line(exc)}", code=1) from None
    except duckdb.Error as exc:
        raise _error(f"query failed: {duckdb_line(exc)}", code=1) from None
    finally:
        con.close()


@app.command()
def describe(
    table: Annotated[str | None, typer.Argument(
        help="A table or view, e.g. analyst.people (a bare name is an analyst view).")] = None,
) -> None:
    """The data dictionary: every table with its description, or one table's columns."""
    from famlink.dictionary import load_dictionary

    book = load_dictionary()
    if table is None:
        listing = Table("table", "description", show_lines=False)
        for name, entry in book.tables.items():
            listing.add_row(name, escape(entry.description))
        console.print(listing)
        return
    name = table.lower() if "." in table else f"analyst.{table.lower()}"
    entry = book.tables.get(name)
    if entry is None:
        raise _error(f"no table {table} in the data dictionary: famlink describe lists them")
    console.print(f"{name}: {escape(entry.description)}", highlight=False)
    columns = Table("column", "description")
    for column in entry.columns:
        columns.add_row(column, escape(book.column(name, column) or ""))
    console.print(columns)


def _stages(progress: RunProgress) -> Any:
    """The generator's (stage, done, total) callbacks as steps with a bar each."""
    current: list[str] = []

    def tick(stage: str, done: int, total: int) -> None:
        if stage == "done":          # the generator's last word: the display closes anyway
            return
        if current != [stage]:
            current[:] = [stage]
            progress.step(stage)
            progress.expect(total)
        progress.advance(completed=done)
    return tick


@app.command()
def models(
    plan: Annotated[str, typer.Option("--plan", help=f"One of: {', '.join(PLANS)}.")] = PLANS[0],
) -> None:
    """The model graph in build order: each model, its layer, where it is defined, and
    the models it reads (transforms/*.sql plus what the plan's rules compile to)."""
    from famlink.models import ModelGraphError
    from rules.engine import load_plan, plan_graph
    from rules.models import RuleFileError

    _check_plan(plan)
    try:
        graph = plan_graph(load_plan(plan))
        ordered = graph.order()
    except (ModelGraphError, RuleFileError) as exc:
        raise _error(str(exc)) from None
    typer.echo(f"model graph for plan {plan}: {len(ordered)} models in build order")
    width = max(len(m.name) for m in ordered)
    for n, m in enumerate(ordered, 1):
        deps = [d for d in m.depends_on if d in graph.models]
        typer.echo(f"{n:4}  {m.name:<{width}}  {m.layer:<12}  {m.origin}  "
                   f"<- {', '.join(deps) if deps else '-'}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def main() -> None:  # pragma: no cover
    os.umask(0o077)     # whatever famlink creates (warehouse, WAL, reports, returns) is private
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted: the published warehouse is unchanged")
        sys.exit(130)
