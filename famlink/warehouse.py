"""The DuckDB warehouse: built in a copy, published atomically.

Analysts keep reading the published file while the next run builds, and a run
that fails for any reason leaves the published file exactly as it was: every
run works on ``<warehouse>.building`` and only a finished run replaces the
published file (``os.replace`` is atomic on one filesystem).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from matchers.identifiers import install_identifier_macros

META_SQL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SEQUENCE IF NOT EXISTS meta.load_seq START 1;
CREATE SEQUENCE IF NOT EXISTS meta.delivery_seq START 1;
CREATE TABLE IF NOT EXISTS meta.loads (
    load_id BIGINT PRIMARY KEY,
    started_at TIMESTAMP,
    extracts_dir VARCHAR,
    up_to_month VARCHAR,
    famlink_version VARCHAR
);
CREATE TABLE IF NOT EXISTS meta.deliveries (
    delivery_id BIGINT PRIMARY KEY,
    load_id BIGINT,
    month VARCHAR,
    file VARCHAR,
    extract VARCHAR,
    sha256 VARCHAR,
    status VARCHAR,          -- loaded | empty
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_rejected BIGINT,
    values_flagged BIGINT,
    loaded_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS meta.rejects (
    delivery_id BIGINT,
    month VARCHAR,
    file VARCHAR,
    row_number BIGINT,
    "column" VARCHAR,
    reason VARCHAR,
    value VARCHAR,
    severity VARCHAR         -- rejected (row not loaded) | flagged (value treated as missing)
);
CREATE TABLE IF NOT EXISTS meta.expectation_results (
    load_id BIGINT,
    extract VARCHAR,
    expectation VARCHAR,
    "column" VARCHAR,
    severity VARCHAR,
    success BOOLEAN,
    unexpected_count BIGINT,
    element_count BIGINT,
    sample_unexpected VARCHAR
);
"""


def connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection with famlink's macros installed."""
    con = duckdb.connect(str(path), read_only=read_only)
    if not read_only:
        install_identifier_macros(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(META_SQL)


def building_path(published: Path) -> Path:
    return published.with_name(published.name + ".building")


@contextmanager
def build_then_publish(published: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection to a private copy; publish it only if the block succeeds."""
    published = Path(published)
    published.parent.mkdir(parents=True, exist_ok=True)
    building = building_path(published)
    for leftover in (building, Path(str(building) + ".wal")):
        leftover.unlink(missing_ok=True)
    if published.exists():
        shutil.copy2(published, building)
    con = connect(building)
    try:
        ensure_schema(con)
        yield con
        con.execute("CHECKPOINT")
        con.close()
    except BaseException:
        con.close()
        building.unlink(missing_ok=True)
        Path(str(building) + ".wal").unlink(missing_ok=True)
        raise
    os.replace(building, published)
