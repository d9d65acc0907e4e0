"""Reading one delivered CSV file into strings, row faults kept, nothing dropped.

Only whole-file faults are fatal (the file cannot be read, its header is not
the contract's): a run must then stop and name the file. Everything else is a
row fault that is reported and does not stop the month's other rows.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from famlink.contract import ExtractSpec

csv.field_size_limit(10_000_000)


class FatalExtractError(Exception):
    """A delivery that cannot be loaded at all: the run stops, nothing is published."""

    def __init__(self, path: Path, fault: str) -> None:
        self.path = Path(path)
        self.fault = fault
        super().__init__(f"{self.path}: {fault}")


@dataclass
class RowFault:
    row_number: int
    column: str
    reason: str
    value: str | None = None


@dataclass
class ParsedFile:
    """The delivered rows as strings, in contract column order, plus row faults."""

    table: pa.Table                      # contract columns (strings) + _row_number
    rows_read: int
    faults: list[RowFault] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _has_bad_bytes(values: list[str]) -> bool:
    return any("\udc80" <= ch <= "\udcff" for v in values for ch in v)


def _read_header(path: Path, spec: ExtractSpec) -> list[int]:
    """Check the header; return, per contract column, its position in the file."""
    expected = spec.column_names
    try:
        handle = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise FatalExtractError(path, f"cannot be read ({exc.strerror})") from exc
    with handle:
        try:
            header = next(csv.reader(handle), None)
        except csv.Error as exc:
            raise FatalExtractError(path, f"header cannot be parsed as CSV ({exc})") from exc
    if header is None:
        raise FatalExtractError(path, "file is empty: no header row")
    header = [h.strip() for h in header]
    if _has_bad_bytes(header):
        raise FatalExtractError(path, "header is not valid UTF-8")
    if header == expected:
        return list(range(len(expected)))
    if sorted(header) == sorted(expected) and len(set(header)) == len(header):
        return [header.index(name) for name in expected]  # same columns, another order
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected column(s) {', '.join(extra)}")
    detail = "; ".join(parts) or "a column is repeated"
    raise FatalExtractError(path, f"header does not match the contract for {spec.file}: {detail}")


def _read_fast(path: Path, spec: ExtractSpec, order: list[int]) -> ParsedFile | None:
    """Arrow's CSV reader for the common case of a clean file; None means 'read exactly'.

    It gives up at the first row it cannot take as is (wrong width, invalid
    UTF-8), and the exact reader below then accounts for every row.
    """
    from pyarrow import csv as pacsv

    width = len(order)
    names = [f"c{i}" for i in range(width)]
    bad_rows: list[object] = []

    def on_invalid(row: object) -> str:
        bad_rows.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=names,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if bad_rows:
        return None
    arrays = {name: table.column(order[i]) for i, name in enumerate(spec.column_names)}
    arrays["_row_number"] = pa.array(range(1, table.num_rows + 1), type=pa.int64())
    return ParsedFile(table=pa.table(arrays), rows_read=table.num_rows)


def _read_exact(path: Path, spec: ExtractSpec, order: list[int]) -> ParsedFile:
    """Row by row with the csv module: every faulty row kept with its number."""
    expected = spec.column_names
    width = len(expected)
    columns: list[list[str]] = [[] for _ in range(width)]
    row_numbers: list[int] = []
    faults: list[RowFault] = []
    rows_read = 0
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rows_read += 1
                faults.append(RowFault(rows_read, "", f"row cannot be parsed as CSV ({exc})"))
                continue
            if not row:               # a blank line is not a record
                continue
            rows_read += 1
            if len(row) != width:
                faults.append(RowFault(
                    rows_read, "",
                    f"wrong number of columns: expected {width}, found {len(row)}",
                    ",".join(row)[:200]))
                continue
            if _has_bad_bytes(row):
                faults.append(RowFault(rows_read, "", "row is not valid UTF-8",
                                       ",".join(row).encode("utf-8", "replace")
                                       .decode("utf-8")[:200]))
                continue
            for i, source in enumerate(order):
                columns[i].append(row[source])
            row_numbers.append(rows_read)
    arrays = {name: pa.array(columns[i], type=pa.string()) for i, name in enumerate(expected)}
    arrays["_row_number"] = pa.array(row_numbers, type=pa.int64())
    return ParsedFile(table=pa.table(arrays), rows_read=rows_read, faults=faults)


def read_delivery(path: Path, spec: ExtractSpec, exact: bool = False) -> ParsedFile:
    """Parse a delivery; raise FatalExtractError for a file the contract cannot accept."""
    order = _read_header(path, spec)
    parsed = None if exact else _read_fast(path, spec, order)
    return parsed if parsed is not None else _read_exact(path, spec, order)
