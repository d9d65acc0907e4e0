"""Reading one delivered CSV file into strings, row faults kept, nothing dropped.

Only whole-file faults are fatal (the file cannot be read, is not a regular
file, its header is not the contract's, it is cut short, its encoding is
neither UTF-8 nor Windows-1252): a run must then stop and name the file.
Everything else is a row fault that is reported and does not stop the month's
other rows. No message here quotes a value from the file: a first line may be
a data row, and data rows hold personal data.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

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


UTF8 = "utf-8"
CP1252 = "windows-1252"
_PYTHON_CODEC = {UTF8: "utf-8-sig", CP1252: "cp1252"}
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_UTF8_NON_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")


@dataclass(frozen=True)
class FileFacts:
    """What one pass over a file's bytes tells before it is parsed."""

    sha256: str
    size: int
    ends_with_newline: bool
    encoding: str                        # UTF8 or CP1252


def check_regular_file(path: Path, inside: Path | None = None) -> None:
    """Refuse a symlink, a FIFO, a device or anything outside the drop folder.

    Reading a FIFO or /dev/zero never ends, and a link can point anywhere on
    the machine: only regular files that really live in the drop are read.
    """
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise FatalExtractError(path, f"cannot be read ({exc.strerror})") from exc
    if stat.S_ISLNK(info.st_mode):
        raise FatalExtractError(path, "is a symbolic link: famlink reads only regular files "
                                      "inside the extracts folder; copy the file in instead")
    if not stat.S_ISREG(info.st_mode):
        raise FatalExtractError(path, "is not a regular file (a pipe, device or socket): "
                                      "refused")
    if inside is not None and not Path(path).resolve().is_relative_to(Path(inside).resolve()):
        raise FatalExtractError(path, "lies outside the extracts folder: refused")


def inspect_file(path: Path) -> FileFacts:
    """sha256, size, last byte and encoding, in one pass over the bytes.

    A file that is not valid UTF-8 is read as Windows-1252 (what Excel on
    Windows writes) when every byte decodes so and no byte sequence in it is
    UTF-8: a file that mixes the two, or has bytes neither can decode, is
    refused as a whole rather than loaded row by row.
    """
    check_regular_file(path)
    digest = hashlib.sha256()
    strict = codecs.getincrementaldecoder("utf-8")()
    loose = None                # after the first invalid byte: what else is in the file
    size, last, bad_utf8, utf8_text = 0, b"", False, False
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
                last = chunk[-1:]
                if chunk.isascii() and (loose is not None or not strict.getstate()[0]):
                    continue
                if loose is None:
                    pending = strict.getstate()[0]
                    try:
                        decoded = strict.decode(chunk)
                        utf8_text = utf8_text or not decoded.isascii()
                        continue
                    except UnicodeDecodeError:
                        bad_utf8 = True
                        loose = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
                        chunk = pending + chunk
                text = loose.decode(chunk)
                utf8_text = utf8_text or _UTF8_NON_ASCII.search(text) is not None
            if loose is None:
                try:
                    strict.decode(b"", final=True)
                except UnicodeDecodeError:
                    bad_utf8 = True
    except OSError as exc:
        raise FatalExtractError(path, f"cannot be read ({exc.strerror})") from exc
    encoding = UTF8
    if bad_utf8:
        if utf8_text:
            raise FatalExtractError(path, "mixes UTF-8 with another encoding: refused as a "
                                          "whole; re-export it as UTF-8")
        # only a file that is not UTF-8 is read again, for bytes Windows-1252 lacks
        cp1252_ok = _cp1252_decodes(path)
        if not cp1252_ok:
            raise FatalExtractError(path, "is neither UTF-8 nor Windows-1252: refused as a "
                                          "whole; re-export it as UTF-8")
        encoding = CP1252
    return FileFacts(sha256=digest.hexdigest(), size=size,
                     ends_with_newline=last in (b"\n", b"\r"), encoding=encoding)


def _cp1252_decodes(path: Path) -> bool:
    """Whether every byte of the file decodes as Windows-1252."""
    try:
        with open(path, "rb") as handle:
            return all(_CP1252_UNDEFINED.search(chunk) is None
                       for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError as exc:
        raise FatalExtractError(path, f"cannot be read ({exc.strerror})") from exc


def file_sha256(path: Path) -> str:
    """The file's sha256 alone: enough to know a delivery loaded before (a file that
    is loaded is inspected whole by ``inspect_file``)."""
    check_regular_file(path)
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise FatalExtractError(path, f"cannot be read ({exc.strerror})") from exc


def _has_bad_bytes(values: list[str]) -> bool:
    return any("\udc80" <= ch <= "\udcff" for v in values for ch in v)


def _open(path: Path, encoding: str) -> TextIO:
    return open(path, encoding=_PYTHON_CODEC[encoding], errors="surrogateescape", newline="")


def _read_header(path: Path, spec: ExtractSpec, encoding: str = UTF8) -> list[int]:
    """Check the header; return, per contract column, its position in the file."""
    expected = spec.column_names
    try:
        handle = _open(path, encoding)
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
    # The names found are not repeated: when the header is missing, the first
    # line is a data row (a name, a date of birth, an NI number).
    missing = [c for c in expected if c not in header]
    extra = sum(1 for c in header if c not in expected)
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        parts.append(f"{extra} column(s) not in the contract")
    detail = "; ".join(parts) or "a column is repeated"
    if len(missing) == len(expected):
        detail = "no header row (the first line holds none of the contract's columns): " + detail
    raise FatalExtractError(path, f"header does not match the contract for {spec.file}: {detail}")


def _read_fast(path: Path, spec: ExtractSpec, order: list[int],
               encoding: str = UTF8) -> ParsedFile | None:
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
                                           block_size=1 << 24,
                                           encoding="cp1252" if encoding == CP1252 else "utf8"),
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


def _read_exact(path: Path, spec: ExtractSpec, order: list[int],
                encoding: str = UTF8) -> ParsedFile:
    """Row by row with the csv module: every faulty row kept with its number.

    The last record is the one a cut file breaks: with fewer columns than the
    header it is not a row fault but a fatal one, since the rest of the
    snapshot is missing too.
    """
    expected = spec.column_names
    width = len(expected)
    columns: list[list[str]] = [[] for _ in range(width)]
    row_numbers: list[int] = []
    faults: list[RowFault] = []
    rows_read = 0
    last_width = width
    with _open(path, encoding) as handle:
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
            last_width = len(row)
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
    if last_width < width:
        raise FatalExtractError(path, f"its last row (row {rows_read}) is cut short: "
                                      f"{last_width} of {width} columns; the file looks "
                                      "truncated, so none of it is loaded")
    arrays = {name: pa.array(columns[i], type=pa.string()) for i, name in enumerate(expected)}
    arrays["_row_number"] = pa.array(row_numbers, type=pa.int64())
    return ParsedFile(table=pa.table(arrays), rows_read=rows_read, faults=faults)


def read_delivery(path: Path, spec: ExtractSpec, exact: bool = False,
                  facts: FileFacts | None = None) -> ParsedFile:
    """Parse a delivery; raise FatalExtractError for a file the contract cannot accept.

    A non-empty file must end with a newline: without one its last row may
    have been cut anywhere, and a snapshot cut short would delete every key
    after the cut.
    """
    facts = facts or inspect_file(path)
    if facts.size and not facts.ends_with_newline:
        raise FatalExtractError(path, "does not end with a newline: the file looks truncated "
                                      "(cut mid-row), so none of it is loaded")
    order = _read_header(path, spec, facts.encoding)
    parsed = None if exact else _read_fast(path, spec, order, facts.encoding)
    return parsed if parsed is not None else _read_exact(path, spec, order, facts.encoding)
