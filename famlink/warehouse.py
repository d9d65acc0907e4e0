"""The DuckDB warehouse: one writer at a time, built in a copy, published atomically.

Analysts keep reading the published file while the next run builds, and a run
that fails for any reason leaves the published file exactly as it was: every
run works on ``<warehouse>.building`` and only a finished run replaces the
published file (``os.replace`` is atomic on one filesystem, and the file and
its folder are synced around it so a power cut cannot lose a published run).

Whatever writes (a run, an ingest, a withdrawal, a review decision) holds
``writer_lock`` on ``<warehouse>.lock`` from start to publish: a second writer
is refused at once, naming the holder, instead of racing the first and losing
its work. The lock is an ``flock``: it dies with its process, so a lock file
left by a killed run never blocks the next one.

The warehouse and everything famlink writes beside it are owner-only (files
0600, folders 0700): the warehouse holds names, dates of birth and NI numbers.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import duckdb

from famlink import __version__

FILE_MODE = 0o600
DIR_MODE = 0o700

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
CREATE TABLE IF NOT EXISTS meta.warehouse (
    plan VARCHAR NOT NULL,   -- the outcomes plan every run of this warehouse uses
    created_at TIMESTAMP,
    famlink_version VARCHAR
);
"""

# Read-only sessions cannot write files, read files, attach other databases or
# load extensions, and cannot switch that back on: the warehouse is the only
# thing they see.
READ_ONLY_CONFIG = {"enable_external_access": False, "lock_configuration": True}


class WarehouseError(ValueError):
    """The warehouse cannot be written now; the message says why and what to do."""


class WarehouseBusy(WarehouseError):
    """Another process holds the writer lock."""


MEMORY_LIMIT_ENV = "FAMLINK_MEMORY_LIMIT"     # e.g. 6GB: DuckDB's memory_limit for a run
THREADS_ENV = "FAMLINK_THREADS"
MEMORY_SHARE = 0.25             # of the machine's memory, for each DuckDB a run opens
MEMORY_CAP_MB = 2048            # a run opens two (the warehouse, Splink's scratch)


def machine_settings() -> dict[str, str | int]:
    """DuckDB's ``threads`` and ``memory_limit`` for a writing run, from the machine.

    The one place they are set. Threads: the cores this process may use.
    Memory: a quarter of the machine, at most 2 GB, since a run holds two
    DuckDB databases (the warehouse and Splink's scratch, which takes the
    warehouse's settings) beside Python's own memory, and the whole run must
    stay under 4 GB on a council's ordinary server; DuckDB spills what does not
    fit to disk. ``FAMLINK_MEMORY_LIMIT`` / ``FAMLINK_THREADS`` override them.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:          # not Linux
        cores = os.cpu_count() or 1
    threads = int(os.environ.get(THREADS_ENV) or cores)
    limit = os.environ.get(MEMORY_LIMIT_ENV)
    if not limit:
        try:
            total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        except (ValueError, OSError, AttributeError):
            total_mb = 4 * MEMORY_CAP_MB
        limit = f"{max(256, min(int(total_mb * MEMORY_SHARE), MEMORY_CAP_MB))}MB"
    return {"threads": threads, "memory_limit": limit}


def connect(path: Path | str, read_only: bool = False,
            locked: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection with famlink's macros installed, sized by ``machine_settings``.

    ``locked``: read-only and sealed (``READ_ONLY_CONFIG``), for SQL a user typed.
    """
    if locked:
        return duckdb.connect(str(path), read_only=True, config=dict(READ_ONLY_CONFIG))
    if read_only:
        return duckdb.connect(str(path), read_only=True)
    from matchers.identifiers import install_identifier_macros

    con = duckdb.connect(str(path), config={k: str(v) for k, v in machine_settings().items()})
    install_identifier_macros(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(META_SQL)


def building_path(published: Path) -> Path:
    return published.with_name(published.name + ".building")


def lock_path(published: Path) -> Path:
    return Path(published).with_name(Path(published).name + ".lock")


def wal_path(database: Path) -> Path:
    return Path(str(database) + ".wal")


def make_private_dir(folder: Path) -> Path:
    """Create ``folder`` (and parents) owner-only; an existing folder is left as it is."""
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, DIR_MODE)
    return folder


def make_private(path: Path) -> Path:
    """Make a file famlink wrote owner-only."""
    os.chmod(path, FILE_MODE)
    return path


# -- one writer at a time ----------------------------------------------------------------

_held: dict[str, int] = {}          # lock files this process holds -> nesting depth
_held_guard = threading.Lock()


def _command_line() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if name in {"__main__.py", "-m", "-c"} or name.startswith("famlink"):
        name = "famlink"
    return " ".join([name, *sys.argv[1:]])[:300]


def _holder_text(raw: str) -> str:
    try:
        holder = json.loads(raw)
        return (f"pid {holder['pid']} on {holder['host']} ({holder['command']}) "
                f"since {holder['since']}")
    except (ValueError, KeyError, TypeError):
        return "a process that is just starting"


@contextmanager
def writer_lock(warehouse: Path, command: str | None = None) -> Iterator[None]:
    """Hold the warehouse's writer lock, or raise ``WarehouseBusy`` at once naming the holder.

    Re-entrant within one process (a run holds it and its build takes it again).
    The lock file stays; only the ``flock`` on it counts, and the kernel drops
    that when the holder exits, however it exits.
    """
    path = lock_path(Path(warehouse).absolute())
    key = str(path)
    with _held_guard:
        if key in _held:
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        os.close(fd)
        raise WarehouseBusy(
            f"warehouse {warehouse} is being written by {_holder_text(holder)}; nothing was "
            "changed: run again when it has finished") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "command": command or _command_line(),
            "since": datetime.now().isoformat(sep=" ", timespec="seconds"),
        }).encode("utf-8"), 0)
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)          # closing the descriptor releases the flock


# -- a stale WAL and durable publishing ----------------------------------------------------

def open_elsewhere_message(published: Path, exc: BaseException | None = None) -> str:
    """One line: another session holds the warehouse open read-write (DuckDB names its pid)."""
    pid = re.search(r"\(PID (\d+)\)", str(exc or ""))
    return (f"warehouse {published} is open read-write in another session"
            + (f" (pid {pid.group(1)})" if pid else "")
            + ": nothing was changed; close that session and run again")


def _refuse_if_open_read_write(published: Path) -> None:
    """A live read-write session would write its WAL beside the file this run publishes."""
    if not published.exists():
        return
    try:
        duckdb.connect(str(published), read_only=True).close()
    except duckdb.IOException as exc:
        raise WarehouseError(open_elsewhere_message(published, exc)) from None
    except duckdb.Error:
        pass          # this process already has it open (another config): not a stranger


def settle_wal(published: Path) -> None:
    """Fold a WAL left beside the published file (a killed read-write session) into it.

    Copying only the main file would lose those writes, and publishing beside
    the old WAL makes the warehouse unopenable. Opening read-write replays the
    WAL; CHECKPOINT writes it into the file. If another session still has the
    warehouse open, or the WAL does not belong to this file, refuse instead.
    """
    wal = wal_path(published)
    if not wal.exists():
        _refuse_if_open_read_write(published)
        return
    if not published.exists():
        raise WarehouseError(f"{wal} exists without its warehouse {published}: move it away "
                             "and run again")
    try:
        con = duckdb.connect(str(published))
    except duckdb.IOException as exc:
        raise WarehouseError(open_elsewhere_message(published, exc)) from None
    except duckdb.Error as exc:
        raise WarehouseError(
            f"{wal} cannot be applied to {published.name} ({type(exc).__name__}); nothing was "
            "changed: restore the warehouse from backup or move the WAL away") from None
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()
    if wal.exists():
        raise WarehouseError(f"{wal} is still there after a checkpoint of {published.name}: "
                             "another session may be writing it; close it and run again")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(building: Path) -> None:
    building.unlink(missing_ok=True)
    wal_path(building).unlink(missing_ok=True)


BUILD_CHECKPOINT_THRESHOLD = "1GB"


@contextmanager
def build_then_publish(published: Path, *,
                       publish: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection to a private copy; publish it only if the block succeeds.

    Holds the writer lock throughout. ``publish=False`` builds and then discards
    the copy (a back-run: evaluate and report, change nothing).
    """
    published = Path(published)
    make_private_dir(published.parent)
    with writer_lock(published):
        settle_wal(published)
        building = building_path(published)
        _discard(building)
        if published.exists():
            shutil.copyfile(published, building)
            make_private(building)
        con = connect(building)
        make_private(building)
        try:
            # the copy is thrown away unless the whole build succeeds, so its changes
            # are checkpointed once, at the end, not every 16 MB of log (a county's
            # first load spends about 10 s fewer in ingest)
            con.execute(f"SET checkpoint_threshold = '{BUILD_CHECKPOINT_THRESHOLD}'")
            ensure_schema(con)
            yield con
            con.execute("CHECKPOINT")
            con.close()
        except BaseException:
            con.close()
            _discard(building)
            raise
        if not publish:
            _discard(building)
            return
        if wal_path(published).exists():
            _discard(building)
            raise WarehouseError(
                f"a session wrote to {published.name} while this run built (its "
                f"{wal_path(published).name} is there): nothing was published; close that "
                "session and run again")
        _fsync(building)
        _fsync(published.parent)
        os.replace(building, published)
        _fsync(published)
        _fsync(published.parent)


# -- what a warehouse remembers ------------------------------------------------------------

def warehouse_plan(con: duckdb.DuckDBPyConnection) -> str | None:
    """The plan this warehouse's runs use: recorded at its first run (or its runs' plan)."""
    for sql in ("SELECT plan FROM meta.warehouse LIMIT 1",
                "SELECT plan FROM claims.runs ORDER BY run_id LIMIT 1"):
        try:
            row = con.execute(sql).fetchone()
        except duckdb.CatalogException:
            continue
        if row:
            return str(row[0])
    return None


def remember_plan(con: duckdb.DuckDBPyConnection, plan: str) -> None:
    """Record the warehouse's plan at its first run; later runs must use the same one."""
    ensure_schema(con)
    if con.execute("SELECT count(*) FROM meta.warehouse").fetchone() == (0,):
        con.execute("INSERT INTO meta.warehouse VALUES (?, ?, ?)",
                    [plan, datetime.now().replace(microsecond=0), __version__])


class RunRefused(WarehouseError):
    """The run would be a silent mistake (another plan, an earlier date, nothing delivered)."""


def _published_facts(warehouse: Path) -> tuple[str | None, date | None, str | None]:
    """The published warehouse's plan, latest run's as-of and first delivered month."""
    if not warehouse.exists():
        return None, None, None
    try:
        con = connect(warehouse, read_only=True)
    except duckdb.IOException as exc:
        raise RunRefused(open_elsewhere_message(warehouse, exc)) from None
    try:
        plan = warehouse_plan(con)
        latest = first = None
        try:
            latest = con.execute("SELECT max(as_of) FROM claims.runs").fetchone()[0]
        except duckdb.CatalogException:
            pass
        try:
            first = con.execute("SELECT min(month) FROM meta.deliveries").fetchone()[0]
        except duckdb.CatalogException:
            pass
        return plan, latest, first
    finally:
        con.close()


def check_run(warehouse: Path, extracts: Path, plan: str, as_of: date,
              back_run: bool = False) -> None:
    """Refuse, in one line, a run that would silently do the wrong thing.

    Another plan than the warehouse's; an as-of before the latest run's (a
    back-run, only with ``back_run``, which then changes nothing); an as-of
    before every delivery (it would publish empty linkage and marts).
    """
    from famlink.ingest.loading import MONTH_DIR

    warehouse = Path(warehouse)
    held, latest, first_loaded = _published_facts(warehouse)
    if held is not None and held != plan:
        raise RunRefused(f"warehouse {warehouse} holds runs under plan {held}, not "
                         f"{plan}: use that plan or another warehouse")
    drop = Path(extracts)
    months = sorted(p.name for p in drop.iterdir()
                    if p.is_dir() and MONTH_DIR.match(p.name)) if drop.is_dir() else []
    as_of_month = as_of.strftime("%Y-%m")
    first = min([m for m in (*months[:1], first_loaded) if m], default=None)
    if first is None and drop.is_dir():
        raise RunRefused(f"no deliveries: {drop} has no month folders (YYYY-MM) and the "
                         "warehouse holds none")
    if first is not None and as_of_month < first:
        raise RunRefused(f"--as-of {as_of} precedes every delivery (the first is "
                         f"{first}): there is nothing to evaluate at that date")
    if latest is not None and as_of < latest and not back_run:
        raise RunRefused(f"--as-of {as_of} precedes the latest run ({latest}): that "
                         "is a back-run; add --back-run to evaluate it without changing the "
                         "warehouse")
