"""Loading month folders of deliveries into the warehouse's raw tables.

Per file: rows read = rows loaded + rows rejected, always. A rejected row or a
flagged value is written to ``meta.rejects`` with its month, file, row number,
column and reason, so nothing delivered is lost from view.

Guards (guards.yaml): a snapshot that would delete more than a set share of
the extract's current keys, or an empty cohort snapshot, stops the run unless
accepted with ``--accept-shrink MONTH/FILE``; what the drop folder lacks or
holds besides the contract's files is kept in ``meta.delivery_checks`` and
each extract's months in ``meta.delivery_months``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from famlink import __version__
from famlink.contract import ExtractSpec, load_contract
from famlink.ingest.drop import (
    MONTH_DIR,
    Finding,
    extract_months,
    list_drop,
)
from famlink.ingest.guards import load_guards
from famlink.ingest.reading import (
    CP1252,
    FatalExtractError,
    FileFacts,
    RowFault,
    check_regular_file,
    file_sha256,
    inspect_file,
    read_delivery,
)
from famlink.ingest.validation import checked_batch_sql, key_parts, quote_ident, sql_type

__all__ = ["MONTH_DIR", "DeliveryResult", "IngestSummary", "ingest_drop", "delivered_months"]
GUARD_TABLES_SQL = """
CREATE TABLE IF NOT EXISTS meta.delivery_checks (
    load_id BIGINT, month VARCHAR, file VARCHAR, finding VARCHAR, detail VARCHAR);
CREATE TABLE IF NOT EXISTS meta.delivery_months (
    extract VARCHAR, file VARCHAR, month VARCHAR, status VARCHAR, load_id BIGINT);
"""
LINEAGE_COLUMNS = {
    "_load_id": "BIGINT", "_delivery_id": "BIGINT", "_month": "VARCHAR",
    "_file": "VARCHAR", "_sha256": "VARCHAR", "_row_number": "BIGINT",
}
Progress = Callable[[str], None]


@dataclass
class DeliveryResult:
    month: str
    file: str
    status: str                   # loaded | already_loaded | empty
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    values_flagged: int = 0
    warnings: list[str] = field(default_factory=list)
    delivery_id: int | None = None


@dataclass
class IngestSummary:
    load_id: int
    deliveries: list[DeliveryResult] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: list[Finding] = field(default_factory=list)

    @property
    def loaded(self) -> list[DeliveryResult]:
        return [d for d in self.deliveries if d.status == "loaded"]

    def check_lines(self) -> list[tuple[str, str]]:
        """(label, line) per finding, months of one missing file on one line."""
        missing: dict[str, list[str]] = {}
        lines: list[tuple[str, str]] = []
        for c in self.checks:
            if c.finding == "missing":
                missing.setdefault(c.file, []).append(c.month)
            else:
                lines.append((c.finding.replace("_", " "), c.line()))
        for file, months in sorted(missing.items()):
            detail = next(c.detail for c in self.checks
                          if c.finding == "missing" and c.file == file)
            when = ", ".join(months) if len(months) <= 6 else (
                f"{len(months)} months, {months[0]}..{months[-1]}")
            lines.append(("missing", f"{file}: not delivered in {when}"
                          + (detail.removeprefix("not delivered") if len(months) == 1 else "")))
        return lines


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """One raw table per extract, created even before its first delivery."""
    for spec in load_contract().files.values():
        cols = [f"{quote_ident(c.name)} {sql_type(c)}" for c in spec.columns.values()]
        cols += [f"{name} {typ}" for name, typ in LINEAGE_COLUMNS.items()]
        con.execute(f"CREATE TABLE IF NOT EXISTS raw.{spec.name} ({', '.join(cols)})")


def _already_loaded(con: duckdb.DuckDBPyConnection, extract: str, month: str, sha: str) -> str:
    """'' (load it), 'same' (this very delivery was loaded before) or 'unchanged'.

    A file is the same as the latest delivery of its extract up to its month
    only when identical to that one: a snapshot equal to an older delivery
    (December = October, November different) is a new delivery and applied.
    """
    seen = con.execute(
        "SELECT count(*) FROM meta.deliveries WHERE extract = ? AND month = ? AND sha256 = ?",
        [extract, month, sha]).fetchall()[0][0]
    if seen:
        return "same"
    latest = con.execute("""
        SELECT sha256 FROM meta.deliveries
        WHERE extract = ? AND status = 'loaded' AND month <= ?
        ORDER BY month DESC, delivery_id DESC LIMIT 1
    """, [extract, month]).fetchall()
    return "unchanged" if latest and latest[0][0] == sha else ""


def _record_faults(con: duckdb.DuckDBPyConnection, delivery_id: int, month: str, file: str,
                   faults: list[RowFault]) -> None:
    if not faults:
        return
    con.executemany(
        "INSERT INTO meta.rejects VALUES (?, ?, ?, ?, ?, ?, ?, 'rejected')",
        [[delivery_id, month, file, f.row_number, f.column, f.reason, f.value] for f in faults])


def check_expectations(con: duckdb.DuckDBPyConnection, load_id: int, spec: ExtractSpec,
                       as_of: date | None) -> list[str]:
    """Run the extract's Great Expectations suite on every delivery this load added.

    One validation per extract per run (not per file): a first run that loads
    two years of history then costs seconds, not minutes. Only the suite's
    warnings run here (implausible data the contract does not reject), on the
    columns they read: its contract expectations are the rules ingest itself
    enforces in SQL (``checked_batch_sql`` and the duplicate-key check), so
    re-running them in pandas over every row cost a county's first load a
    minute and gigabytes for nothing; tests/test_expectations.py runs them
    against ingest's output instead. A row-by-row warning runs once per
    distinct value of its columns, with the count of rows holding it, in the
    order values first appear in the file (``expectations.validate_counted``): the same
    counts as over every row, for a few thousand values instead of millions.
    Results are kept in meta.expectation_results.
    """
    from expectations import WARNING_ONLY, expectation_groups, validate_counted, validate_delivery

    outcomes: list[tuple[int, Any]] = []
    for group in expectation_groups(spec.name, WARNING_ONLY):
        columns = ", ".join(quote_ident(c) for c in group.columns)
        rows = f"FROM raw.{spec.name} WHERE _load_id = {int(load_id)}"
        check = None
        if group.counted:
            values = con.sql(f"SELECT {columns}, count(*) AS _rows {rows} GROUP BY ALL "
                             "ORDER BY min(_row_number)").to_arrow_table()
            if values.num_rows:
                check = validate_counted(spec.name, values, "_rows", orders=group.orders,
                                         as_of=as_of)
        else:
            reader = con.sql(f"SELECT {columns}, _delivery_id {rows}").to_arrow_reader(
                VALIDATE_ROWS)
            for batch in reader:    # a bounded pandas frame at a time: the peak stays low
                if batch.num_rows == 0:
                    continue
                part = validate_delivery(spec.name, pa.Table.from_batches([batch]),
                                         as_of=as_of, severities=WARNING_ONLY,
                                         orders=group.orders)
                check = part if check is None else _merged(check, part)
        if check is not None:
            outcomes += zip(sorted(group.orders), check.outcomes, strict=True)
    if not outcomes:
        return []
    ordered = [o for _, o in sorted(outcomes, key=lambda pair: pair[0])]
    con.executemany(
        "INSERT INTO meta.expectation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[load_id, spec.name, o.expectation_type, o.column, o.severity, o.success,
          o.unexpected_count, o.element_count, "; ".join(o.sample_unexpected)]
         for o in ordered])
    notes = [f"{spec.file}: data-quality check: {_outcome_line(o)}"
             for o in ordered if o.severity == "warning" and not o.success]
    notes += [f"{spec.file}: CONTRACT CHECK FAILED AFTER LOAD (please report): {_outcome_line(o)}"
              for o in ordered if o.severity == "contract" and not o.success]
    return notes


VALIDATE_ROWS = 1_000_000


def _merged(a: Any, b: Any) -> Any:
    """Two parts' checks as one: every warning is a row-by-row count, so counts add up."""
    from dataclasses import replace

    outcomes = [replace(x, success=x.success and y.success, error=x.error or y.error,
                        unexpected_count=x.unexpected_count + y.unexpected_count,
                        element_count=x.element_count + y.element_count,
                        sample_unexpected=list(dict.fromkeys(
                            x.sample_unexpected + y.sample_unexpected))[:5])
                for x, y in zip(a.outcomes, b.outcomes, strict=True)]
    return replace(a, row_count=a.row_count + b.row_count, outcomes=outcomes)


def _outcome_line(outcome: Any) -> str:
    """An expectation's result in words and counts: its sample values stay in the warehouse."""
    where = f"{outcome.column}: " if outcome.column else ""
    what = (f"{outcome.unexpected_count:,} of {outcome.element_count:,} values unexpected"
            if outcome.error is None else "the check could not run")
    why = f"; {outcome.why}" if outcome.why else ""
    return f"{where}{outcome.expectation_type}: {what} ({outcome.severity}{why})"


def load_delivery(con: duckdb.DuckDBPyConnection, load_id: int, month: str, path: Path,
                  spec: ExtractSpec, facts: FileFacts | str) -> DeliveryResult:
    """Check one file against the contract and append its good rows to raw.<extract>."""
    if isinstance(facts, str):                  # a sha256, as callers before guards passed
        facts = inspect_file(path)
    sha = facts.sha256
    delivery_id = con.execute("SELECT nextval('meta.delivery_seq')").fetchall()[0][0]
    if facts.size == 0:
        # A zero-byte file carries no header: most likely a failed export. Loading it
        # as a snapshot would delete everything, so it is recorded and not applied.
        con.execute("INSERT INTO meta.deliveries VALUES (?, ?, ?, ?, ?, ?, 'empty', 0, 0, 0, 0, ?)",
                    [delivery_id, load_id, month, spec.file, spec.name, sha, datetime.now()])
        return DeliveryResult(month, spec.file, "empty", warnings=[
            f"{month}/{spec.file} is empty (0 bytes, no header): not applied"],
            delivery_id=delivery_id)
    parsed = read_delivery(path, spec, facts=facts)
    con.register("incoming", parsed.table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS {checked_batch_sql(spec)}")
    finally:
        con.unregister("incoming")
    _record_faults(con, delivery_id, month, spec.file, parsed.faults)
    con.execute("""
        INSERT INTO meta.rejects
        SELECT ?, ?, ?, _row_number, f.column, f.reason, f.value, f.severity
        FROM (SELECT _row_number, unnest(_faults) AS f FROM checked WHERE len(_faults) > 0)
        ORDER BY _row_number
    """, [delivery_id, month, spec.file])
    parts = key_parts(spec)
    keys = ", ".join(f"{part} AS _k{i}" for i, part in enumerate(parts))
    names = ", ".join(f"_k{i}" for i in range(len(parts)))
    not_null_key = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in spec.key)
    # Of rows sharing a key, the first is loaded and the others rejected: a key
    # twice in one delivery is ambiguous, and the rejects table says where.
    # Grouped by key (a hash, not a sort of the whole delivery): only the keys
    # that repeat are looked at row by row.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE repeated AS
        WITH keyed AS (SELECT {keys}, _row_number FROM checked
                       WHERE NOT _rejected AND {not_null_key}),
             twice AS (SELECT {names}, min(_row_number) AS _first_row FROM keyed
                       GROUP BY {names} HAVING count(*) > 1)
        SELECT _row_number, _first_row FROM keyed JOIN twice USING ({names})
        WHERE _row_number <> _first_row
    """)
    con.execute("""
        INSERT INTO meta.rejects
        SELECT ?, ?, ?, _row_number, '', 'duplicate key: same key as row ' || _first_row, NULL,
               'rejected'
        FROM repeated ORDER BY _row_number
    """, [delivery_id, month, spec.file])
    columns = ", ".join(quote_ident(c) for c in spec.column_names)
    # no ORDER BY: DuckDB's parallel insert need not keep file order past one row group
    # (122,880 rows), and nothing reads raw by rowid: each row carries its _row_number
    rows_loaded = con.execute(f"""
        INSERT INTO raw.{spec.name}
        SELECT {columns}, ?, ?, ?, ?, ?, _row_number
        FROM checked WHERE NOT _rejected
                       AND _row_number NOT IN (SELECT _row_number FROM repeated)
    """, [load_id, delivery_id, month, spec.file, sha]).fetchall()[0][0]
    counts = con.execute("""
        SELECT count(DISTINCT row_number) FILTER (WHERE severity = 'rejected'),
               count(*) FILTER (WHERE severity = 'flagged')
        FROM meta.rejects WHERE delivery_id = ?
    """, [delivery_id]).fetchall()[0]
    rows_rejected, values_flagged = int(counts[0]), int(counts[1])
    if rows_loaded + rows_rejected != parsed.rows_read:
        raise RuntimeError(f"{month}/{spec.file}: rows read {parsed.rows_read} != loaded "
                           f"{rows_loaded} + rejected {rows_rejected}")
    con.execute("INSERT INTO meta.deliveries VALUES (?, ?, ?, ?, ?, ?, 'loaded', ?, ?, ?, ?, ?)",
                [delivery_id, load_id, month, spec.file, spec.name, sha, parsed.rows_read,
                 rows_loaded, rows_rejected, values_flagged, datetime.now()])
    con.execute("DROP TABLE IF EXISTS checked; DROP TABLE IF EXISTS repeated")
    return DeliveryResult(month, spec.file, "loaded", parsed.rows_read, rows_loaded,
                          rows_rejected, values_flagged, delivery_id=delivery_id)


def _academic_year(month: str) -> int:
    """The first calendar year of the academic year (September to August) of a month."""
    return int(month[:4]) - (int(month[5:7]) < 9)


def _scope_condition(spec: ExtractSpec, month: str) -> str:
    """SQL: the key is still in the extract's scope at a month (all keys without a scope)."""
    scope = load_guards().for_extract(spec.name).scope
    if scope is None:
        return "true"
    col = quote_ident(scope.column)
    if scope.years is not None:                 # a rolling window: "in the last 3 years"
        # counted back from the end of the delivery's month, leniently: a key
        # from that month years ago may already have left
        year, mon = int(month[:4]), int(month[5:7]) + 1
        year, mon = (year + 1, 1) if mon == 13 else (year, mon)
        oldest = f"{year - scope.years:04d}-{mon:02d}-01"
        return f"coalesce(CAST({col} AS DATE) >= DATE '{oldest}', true)"
    if spec.columns[scope.column].type == "date":
        first_year = f"(year({col}) - CASE WHEN month({col}) < 9 THEN 1 ELSE 0 END)"
    else:                                       # an academic year written 2023/24
        first_year = f"TRY_CAST(left({col}, 4) AS INTEGER)"
    oldest = _academic_year(month) - (scope.academic_years - 1)
    return f"coalesce({first_year} >= {oldest}, true)"


def accepted(month: str, file: str, accept_shrink: tuple[str, ...]) -> str | None:
    """The --accept-shrink value naming this delivery (MONTH/FILE or a path ending so)."""
    name = f"{month}/{file}"
    for value in accept_shrink:
        text = value.replace("\\", "/")
        if text == name or text.endswith("/" + name):
            return value
    return None


def guard_shrink(con: duckdb.DuckDBPyConnection, spec: ExtractSpec, path: Path,
                 result: DeliveryResult, accept_shrink: tuple[str, ...]) -> Finding | None:
    """Refuse a snapshot that would delete too much of what is current.

    Compared with the latest snapshot loaded up to its month: the share of
    that one's keys (still in scope) absent now. An empty cohort snapshot is
    refused even with nothing to delete. Raises FatalExtractError (the build
    is then discarded); an accepted shrink is returned as a finding to record.
    """
    if spec.delivery != "snapshot" or result.status != "loaded":
        return None
    guard = load_guards().for_extract(spec.name)
    month = result.month
    previous = con.execute("""
        SELECT delivery_id FROM meta.deliveries
        WHERE extract = ? AND status = 'loaded' AND month <= ? AND delivery_id <> ?
        ORDER BY month DESC, delivery_id DESC LIMIT 1
    """, [spec.name, month, result.delivery_id]).fetchall()
    current = removed = 0
    if previous:
        parts = key_parts(spec)
        keys = ", ".join(f"{part} AS _k{i}" for i, part in enumerate(parts))
        same = " AND ".join(f"before._k{i} IS NOT DISTINCT FROM now._k{i}"
                            for i in range(len(parts)))
        current, removed = con.execute(f"""
            WITH before AS (SELECT DISTINCT {keys} FROM raw.{spec.name}
                            WHERE _delivery_id = ? AND {_scope_condition(spec, month)}),
                 now AS (SELECT DISTINCT {keys} FROM raw.{spec.name} WHERE _delivery_id = ?)
            SELECT (SELECT count(*) FROM before),
                   (SELECT count(*) FROM before ANTI JOIN now ON {same})
        """, [previous[0][0], result.delivery_id]).fetchall()[0]
    limit = guard.max_removed_share if guard.max_removed_share is not None else 0.2
    empty = bool(guard.refuse_empty) and result.rows_loaded == 0
    if not empty and not (current and removed / current > limit):
        return None
    if empty:
        what = ("has a header but no rows" if result.rows_read == 0
                else f"has no row that can be loaded ({result.rows_rejected:,} rejected)")
        fault = (f"{what}: an empty {spec.name} snapshot would delete all {current:,} "
                 f"current keys" if current else
                 f"{what}: an empty {spec.name} snapshot is never taken as the truth unasked")
    else:
        fault = (f"would delete {removed:,} of the {current:,} current keys of {spec.name} "
                 f"({removed / current:.0%}, more than the {limit:.0%} allowed)")
    if accepted(month, spec.file, accept_shrink):
        return Finding(month, spec.file, "shrink_accepted",
                       f"{fault}: applied, accepted with --accept-shrink")
    raise FatalExtractError(path, f"{fault}: not applied. If the deletion is real, run again "
                                  f"with --accept-shrink {month}/{spec.file}")


def ingest_drop(con: duckdb.DuckDBPyConnection, drop: Path, up_to_month: str,
                progress: Progress | None = None, as_of: date | None = None,
                accept_shrink: tuple[str, ...] = ()) -> IngestSummary:
    """Load every delivery up to a month that the warehouse does not hold yet."""
    contract = load_contract()
    create_raw_tables(con)
    con.execute(GUARD_TABLES_SQL)
    load_id = con.execute("SELECT nextval('meta.load_seq')").fetchall()[0][0]
    con.execute("INSERT INTO meta.loads VALUES (?, ?, ?, ?, ?)",
                [load_id, datetime.now(), str(drop), up_to_month, __version__])
    summary = IngestSummary(load_id=load_id)
    listing = list_drop(Path(drop), up_to_month)
    summary.checks += listing.findings
    summary.ignored_files = [f"{c.month}/{c.file}" for c in listing.findings
                             if c.finding == "unexpected_file"]
    if not listing.months:
        summary.warnings.append(f"no month folders (YYYY-MM) up to {up_to_month} in {drop}")
    root = Path(drop).resolve()
    empty: set[tuple[str, str]] = set()
    used: set[str] = set()
    # a month of an extract the warehouse holds a delivery of: its file is most likely
    # that delivery again, known by its sha256 alone (no need to inspect it whole)
    held = set(con.execute("SELECT DISTINCT extract, month FROM meta.deliveries").fetchall())
    if any((contract.files[path.name].name, month) not in held
           for month, _folder in listing.months for path in listing.files[month]):
        from expectations import warm_up

        warm_up()       # a month not held yet will load: GX imports while the rest is checked
    for month, _folder in listing.months:
        for path in listing.files[month]:
            spec = contract.files[path.name]
            check_regular_file(path, inside=root)
            if path.stat().st_size == 0:
                empty.add((month, spec.file))
            facts = None if (spec.name, month) in held else inspect_file(path)
            sha = facts.sha256 if facts else file_sha256(path)
            seen = _already_loaded(con, spec.name, month, sha)
            if seen:
                if seen == "unchanged":     # kept, so the month shows as delivered
                    con.execute(
                        "INSERT INTO meta.deliveries VALUES (nextval('meta.delivery_seq'), ?, ?, "
                        "?, ?, ?, 'unchanged', 0, 0, 0, 0, ?)",
                        [load_id, month, spec.file, spec.name, sha, datetime.now()])
                summary.deliveries.append(DeliveryResult(month, path.name, "already_loaded"))
                continue
            facts = facts or inspect_file(path)
            if progress:
                progress(f"{month}/{path.name}")
            if not summary.loaded:      # something to validate: GX imports meanwhile
                from expectations import warm_up

                warm_up()
            result = load_delivery(con, load_id, month, path, spec, facts)
            if facts.encoding == CP1252:
                summary.checks.append(Finding(month, spec.file, "encoding",
                                              "not valid UTF-8: decoded as Windows-1252"))
            if accepted_shrink := guard_shrink(con, spec, path, result, accept_shrink):
                summary.checks.append(accepted_shrink)
                used.add(accepted(month, spec.file, accept_shrink) or "")
            summary.deliveries.append(result)
    rows, missing = extract_months(listing, up_to_month, empty)
    summary.checks += missing
    _record_checks(con, load_id, up_to_month, summary.checks, rows)
    for value in accept_shrink:
        if value not in used:
            summary.warnings.append(f"--accept-shrink {value}: no snapshot of this run needed it")
    for name in sorted({d.file for d in summary.loaded}):
        if progress:
            progress(f"expectations: {name}")
        summary.warnings += check_expectations(con, load_id, contract.files[name], as_of)
    return summary


def _record_checks(con: duckdb.DuckDBPyConnection, load_id: int, up_to_month: str,
                   checks: list[Finding], months: list[tuple[str, str, str, str]]) -> None:
    """The run's findings, and each extract's months as this drop folder shows them."""
    _insert_rows(con, "meta.delivery_checks",
                 [(load_id, c.month, c.file, c.finding, c.detail) for c in checks])
    con.execute("DELETE FROM meta.delivery_months WHERE month <= ?", [up_to_month])
    _insert_rows(con, "meta.delivery_months", [(*row, load_id) for row in months])


def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    """Append rows in one statement (DuckDB runs ``executemany`` a statement a row)."""
    for start in range(0, len(rows), 500):
        batch = rows[start:start + 500]
        marks = ", ".join("(" + ", ".join("?" * len(row)) + ")" for row in batch)
        con.execute(f"INSERT INTO {table} VALUES {marks}", [v for row in batch for v in row])


def delivered_months(con: duckdb.DuckDBPyConnection, extract: str) -> dict[str, str]:
    """{month: status} of one extract as the latest run saw the drop folder.

    status is delivered, empty (0 bytes, not applied), missing or not_due
    (a termly or quarterly extract between its deliveries). An outcome that
    rests on the absence of events cannot rest on a month that is not
    delivered.
    """
    return dict(con.execute("SELECT month, status FROM meta.delivery_months WHERE extract = ? "
                            "ORDER BY month", [extract]).fetchall())

