"""The drop folder as delivered: month folders, the files in them, what is missing.

Nothing here opens a file. Symlinks and special files are refused before any
read (a FIFO or /dev/zero never ends; a link can point anywhere on the
machine), folders and files the contract does not name are listed, and each
extract's months are checked against its cadence (guards.yaml) so a run says
which deliveries it lacks.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from famlink.contract import load_contract
from famlink.ingest.guards import load_guards
from famlink.ingest.reading import FatalExtractError

MONTH_DIR = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Statuses of an extract in a month (meta.delivery_months.status).
DELIVERED, EMPTY, MISSING, NOT_DUE = "delivered", "empty", "missing", "not_due"


@dataclass(frozen=True)
class Finding:
    """One fact about the drop folder a data officer should see (meta.delivery_checks)."""

    month: str
    file: str
    finding: str     # not_a_month_folder | unexpected_file | missing | missing_month | ...
    detail: str

    def line(self) -> str:
        where = "/".join(part for part in (self.month, self.file) if part)
        return f"{where}: {self.detail}"


@dataclass
class DropListing:
    """The month folders up to the run's month and the contract files each holds."""

    months: list[tuple[str, Path]] = field(default_factory=list)
    files: dict[str, list[Path]] = field(default_factory=dict)   # month -> contract files
    findings: list[Finding] = field(default_factory=list)


def shown(name: str) -> str:
    """A name from the drop folder made safe for a one-line message."""
    return _CONTROL.sub("?", name)


def _refuse_link_or_special(path: Path, info: os.stat_result, want_dir: bool) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise FatalExtractError(path, "is a symbolic link: famlink reads only files and "
                                      "folders inside the extracts folder; copy it in instead")
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        raise FatalExtractError(path, "is not a regular file (a pipe, device or socket): "
                                      "refused")
    if want_dir and not stat.S_ISDIR(info.st_mode):
        raise FatalExtractError(path, "is named like a month folder but is not a folder")


def _unexpected_detail(name: str) -> str:
    files = load_contract().files
    lower = {f.lower(): f for f in files}
    stem = name.split(".", 1)[0].lower()
    if name.lower() in lower:
        return (f"not read: file names are case-sensitive, the contract's is "
                f"{lower[name.lower()]}")
    if f"{stem}.csv" in lower:
        return f"not read: only CSV files are read, the contract's is {lower[stem + '.csv']}"
    return "not read: not a file of the extract contract"


def list_drop(drop: Path, up_to_month: str) -> DropListing:
    """Month folders up to a month, their contract files, and what does not belong."""
    drop = Path(drop)
    if not drop.is_dir():
        raise FatalExtractError(drop, "extracts folder does not exist")
    root = drop.resolve()
    listing = DropListing()
    contract = load_contract()
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        name = entry.name
        if name.startswith((".", "_")):
            continue                # hidden, or the generator's _truth/: not deliveries
        if not MONTH_DIR.match(name):
            kind = "folder" if entry.is_dir(follow_symlinks=False) else "file"
            listing.findings.append(Finding(
                shown(name), "", "not_a_month_folder",
                f"not read: a {kind} whose name is not a month YYYY-MM (01-12)"))
            continue
        if name > up_to_month:
            continue
        folder = root / name
        _refuse_link_or_special(folder, entry.stat(follow_symlinks=False), want_dir=True)
        listing.months.append((name, folder))
        found: list[Path] = []
        for item in sorted(os.scandir(folder), key=lambda e: e.name):
            if item.name.startswith("."):
                continue
            path = folder / item.name
            _refuse_link_or_special(path, item.stat(follow_symlinks=False), want_dir=False)
            if item.is_dir(follow_symlinks=False):
                listing.findings.append(Finding(name, shown(item.name), "unexpected_file",
                                                "not read: a folder inside a month folder"))
            elif item.name in contract.files:
                if not path.resolve().is_relative_to(root):
                    raise FatalExtractError(path, "lies outside the extracts folder: refused")
                found.append(path)
            else:
                listing.findings.append(Finding(name, shown(item.name), "unexpected_file",
                                                _unexpected_detail(item.name)))
        listing.files[name] = found
    return listing


def next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12}-{mon % 12 + 1:02d}"


def previous_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def months_between(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7])


def month_span(first: str, last: str) -> list[str]:
    months, month = [], first
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def extract_months(listing: DropListing, up_to_month: str, empty: set[tuple[str, str]],
                   ) -> tuple[list[tuple[str, str, str, str]], list[Finding]]:
    """Per extract and month from the first month folder: delivered, empty, missing, not_due.

    An extract is missing in a month once its cadence's months have passed
    since it last arrived (monthly: any month without it; termly: the 4th
    month; quarterly: the 3rd), counting from the month before the first
    month folder. ``empty`` holds the (month, file) delivered as 0 bytes.
    Returns rows (extract, file, month, status) and the findings to list.
    """
    if not listing.months:
        return [], []
    guards = load_guards()
    span = month_span(listing.months[0][0], up_to_month)
    present = {month: {p.name for p in paths} for month, paths in listing.files.items()}
    rows: list[tuple[str, str, str, str]] = []
    findings = [Finding(m, "", "missing_month", "no month folder: nothing delivered")
                for m in span if m not in present]
    start = span[0]
    for spec in load_contract().files.values():
        cadence = guards.cadence_of(spec.name)
        last = previous_month(start)
        for month in span:
            if spec.file in present.get(month, set()):
                status = EMPTY if (month, spec.file) in empty else DELIVERED
                if status == DELIVERED:
                    last = month
            elif months_between(last, month) >= cadence:
                status = MISSING
            else:
                status = NOT_DUE
            rows.append((spec.name, spec.file, month, status))
            if status == MISSING and month in present:
                since = f"last delivered {last}" if last >= start else "never delivered"
                how = "" if cadence == 1 else f" (due every {cadence} months; {since})"
                findings.append(Finding(month, spec.file, "missing",
                                        f"not delivered{how}"))
    return rows, findings
