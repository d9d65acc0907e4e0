"""Loading month folders of deliveries into the warehouse's raw tables.

Per file: rows read = rows loaded + rows rejected, always. A rejected row or a
flagged value is written to ``meta.rejects`` with its month, file, row number,
column and reason, so nothing delivered is lost from view.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from famlink import __version__
from famlink.contract import ExtractSpec, load_contract
from famlink.ingest.reading import FatalExtractError, RowFault, file_sha256, read_delivery
from famlink.ingest.validation import checked_batch_sql, key_expression, quote_ident, sql_type

MONTH_DIR = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
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


@dataclass
class IngestSummary:
    load_id: int
    deliveries: list[DeliveryResult] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> list[DeliveryResult]:
        return [d for d in self.deliveries if d.status == "loaded"]


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """One raw table per extract, created even before its first delivery."""
    for spec in load_contract().files.values():
        cols = [f"{quote_ident(c.name)} {sql_type(c)}" for c in spec.columns.values()]
        cols += [f"{name} {typ}" for name, typ in LINEAGE_COLUMNS.items()]
        con.execute(f"CREATE TABLE IF NOT EXISTS raw.{spec.name} ({', '.join(cols)})")


def month_folders(drop: Path, up_to_month: str) -> list[tuple[str, Path]]:
    if not drop.is_dir():
        raise FatalExtractError(drop, "extracts folder does not exist")
    months = sorted((p.name, p) for p in drop.iterdir()
                    if p.is_dir() and MONTH_DIR.match(p.name) and p.name <= up_to_month)
    return months


def _already_loaded(con: duckdb.DuckDBPyConnection, extract: str, sha: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM meta.deliveries WHERE extract = ? AND sha256 = ?",
        [extract, sha]).fetchall()[0]
    return bool(found and found[0])


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
    two years of history then costs seconds, not minutes. The suite re-checks
    what ingest enforced (a contract failure here is a bug in ingest, reported
    loudly) and flags implausible data as warnings. Results are kept in
    meta.expectation_results.
    """
    from expectations import validate_delivery

    columns = ", ".join(quote_ident(c) for c in spec.column_names)
    batch = con.sql(f"SELECT {columns}, _delivery_id FROM raw.{spec.name} "
                    f"WHERE _load_id = {int(load_id)}").to_arrow_table()
    if batch.num_rows == 0:
        return []
    check = validate_delivery(spec.name, batch, as_of=as_of)
    con.executemany(
        "INSERT INTO meta.expectation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[load_id, spec.name, o.expectation_type, o.column, o.severity, o.success,
          o.unexpected_count, o.element_count, "; ".join(o.sample_unexpected)]
         for o in check.outcomes])
    notes = [f"{spec.file}: data-quality check: {o.describe()}" for o in check.warnings]
    notes += [f"{spec.file}: CONTRACT CHECK FAILED AFTER LOAD (please report): {o.describe()}"
              for o in check.contract_failures]
    return notes


def load_delivery(con: duckdb.DuckDBPyConnection, load_id: int, month: str, path: Path,
                  spec: ExtractSpec, sha: str) -> DeliveryResult:
    """Check one file against the contract and append its good rows to raw.<extract>."""
    delivery_id = con.execute("SELECT nextval('meta.delivery_seq')").fetchall()[0][0]
    if path.stat().st_size == 0:
        # A zero-byte file carries no header: most likely a failed export. Loading it
        # as a snapshot would delete everything, so it is recorded and not applied.
        con.execute("INSERT INTO meta.deliveries VALUES (?, ?, ?, ?, ?, ?, 'empty', 0, 0, 0, 0, ?)",
                    [delivery_id, load_id, month, spec.file, spec.name, sha, datetime.now()])
        return DeliveryResult(month, spec.file, "empty", warnings=[
            f"{month}/{spec.file} is empty (0 bytes, no header): not applied"])
    parsed = read_delivery(path, spec)
    con.register("incoming", parsed.table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS {checked_batch_sql(spec)}")
    finally:
        con.unregister("incoming")
    _record_faults(con, delivery_id, month, spec.file, parsed.faults)
    con.execute("""
        INSERT INTO meta.rejects
        SELECT ?, ?, ?, _row_number, f.column, f.reason, f.value, f.severity
        FROM (SELECT _row_number, unnest(_faults) AS f FROM checked)
        ORDER BY _row_number
    """, [delivery_id, month, spec.file])
    key = key_expression(spec)
    not_null_key = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in spec.key)
    # Of rows sharing a key, the first is loaded and the others rejected: a key
    # twice in one delivery is ambiguous, and the rejects table says where.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE keyed AS
        SELECT *, CASE WHEN {not_null_key}
                       THEN first_value(_row_number) OVER (PARTITION BY {key} ORDER BY _row_number)
                  END AS _first_row
        FROM checked
        WHERE len(list_filter(_faults, lambda f: f.severity = 'rejected')) = 0
    """)
    con.execute("""
        INSERT INTO meta.rejects
        SELECT ?, ?, ?, _row_number, '', 'duplicate key: same key as row ' || _first_row, NULL,
               'rejected'
        FROM keyed WHERE _first_row IS NOT NULL AND _first_row <> _row_number
        ORDER BY _row_number
    """, [delivery_id, month, spec.file])
    columns = ", ".join(quote_ident(c) for c in spec.column_names)
    con.execute(f"""
        INSERT INTO raw.{spec.name}
        SELECT {columns}, ?, ?, ?, ?, ?, _row_number
        FROM keyed WHERE _first_row IS NULL OR _first_row = _row_number
        ORDER BY _row_number
    """, [load_id, delivery_id, month, spec.file, sha])
    counts = con.execute("""
        SELECT count(DISTINCT row_number) FILTER (WHERE severity = 'rejected'),
               count(*) FILTER (WHERE severity = 'flagged')
        FROM meta.rejects WHERE delivery_id = ?
    """, [delivery_id]).fetchall()[0]
    rows_rejected, values_flagged = int(counts[0]), int(counts[1])
    rows_loaded = con.execute(f"SELECT count(*) FROM raw.{spec.name} WHERE _delivery_id = ?",
                              [delivery_id]).fetchall()[0][0]
    if rows_loaded + rows_rejected != parsed.rows_read:
        raise RuntimeError(f"{month}/{spec.file}: rows read {parsed.rows_read} != loaded "
                           f"{rows_loaded} + rejected {rows_rejected}")
    con.execute("INSERT INTO meta.deliveries VALUES (?, ?, ?, ?, ?, ?, 'loaded', ?, ?, ?, ?, ?)",
                [delivery_id, load_id, month, spec.file, spec.name, sha, parsed.rows_read,
                 rows_loaded, rows_rejected, values_flagged, datetime.now()])
    con.execute("DROP TABLE IF EXISTS checked; DROP TABLE IF EXISTS keyed")
    return DeliveryResult(month, spec.file, "loaded", parsed.rows_read, rows_loaded,
                          rows_rejected, values_flagged)


def ingest_drop(con: duckdb.DuckDBPyConnection, drop: Path, up_to_month: str,
                progress: Progress | None = None, as_of: date | None = None) -> IngestSummary:
    """Load every delivery up to a month that the warehouse does not hold yet."""
    contract = load_contract()
    create_raw_tables(con)
    load_id = con.execute("SELECT nextval('meta.load_seq')").fetchall()[0][0]
    con.execute("INSERT INTO meta.loads VALUES (?, ?, ?, ?, ?)",
                [load_id, datetime.now(), str(drop), up_to_month, __version__])
    summary = IngestSummary(load_id=load_id)
    months = month_folders(Path(drop), up_to_month)
    if not months:
        summary.warnings.append(f"no month folders (YYYY-MM) up to {up_to_month} in {drop}")
    for month, folder in months:
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.is_dir():
                continue
            if path.name not in contract.files:
                summary.ignored_files.append(f"{month}/{path.name}")
                continue
            spec = contract.files[path.name]
            try:
                sha = file_sha256(path)
            except OSError as exc:
                raise FatalExtractError(path, f"cannot be read ({exc.strerror})") from exc
            if _already_loaded(con, spec.name, sha):
                summary.deliveries.append(DeliveryResult(month, path.name, "already_loaded"))
                continue
            if progress:
                progress(f"{month}/{path.name}")
            summary.deliveries.append(load_delivery(con, load_id, month, path, spec, sha))
    for name in sorted({d.file for d in summary.loaded}):
        if progress:
            progress(f"expectations: {name}")
        summary.warnings += check_expectations(con, load_id, contract.files[name], as_of)
    return summary
