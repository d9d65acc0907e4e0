"""CSV writing to the contract, with deterministic BOM/CRLF variants and planted faults."""

from __future__ import annotations

import csv
import importlib.util
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from . import ids
from .truth import Truth

FAULT_FILES: dict[str, tuple[str, ...]] = {
    "invalid_upn": ("yot_offences.csv", "social_care_episodes.csv", "cohort_members.csv"),
    "invalid_nhs": ("social_care_episodes.csv", "cohort_members.csv"),
    "invalid_ni": ("cohort_members.csv", "dwp_benefits.csv", "dwp_employment.csv"),
    "bad_date": ("yot_offences.csv", "school_attendance.csv", "social_care_episodes.csv",
                 "police_incidents.csv", "social_care_missing.csv"),
    "column_count": ("police_incidents.csv", "police_nominals.csv", "school_attendance.csv",
                     "social_care_episodes.csv"),
    "duplicate_key": ("school_attendance.csv", "social_care_episodes.csv",
                      "social_care_missing.csv"),
}
_ID_COLUMN = {"invalid_upn": "upn", "invalid_nhs": "nhs_number", "invalid_ni": "ni_number"}
_BREAK = {"invalid_upn": ids.break_upn, "invalid_nhs": ids.break_nhs, "invalid_ni": ids.break_ni}
_BAD_DATES = {"%d/%m/%Y": "31/02/{y}", "%Y-%m-%d": "{y}-02-31", "%Y%m%d": "{y}0231",
              "%Y-%m-%dT%H:%M:%S": "{y}-02-30T25:61:00", "%d/%m/%Y %H:%M": "30/02/{y} 10:00"}


def contract_dir() -> Path:
    """The folder of the extract contract the generator writes to: famlink's own copy.

    Found without importing famlink.contract (its import loads the rule files): the
    installed famlink's folder, else, for this package installed from the repository
    without famlink, the repository's famlink/contract beside generator/.
    """
    try:
        spec = importlib.util.find_spec("famlink.contract")
    except ModuleNotFoundError:   # no famlink at all
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    beside = Path(__file__).resolve().parents[2] / "famlink" / "contract"
    if (beside / "extracts.yaml").is_file():
        return beside
    raise RuntimeError("famlink_generator writes to famlink's extract contract "
                       "(famlink/contract/extracts.yaml): install famlink too (pip install -e .)")


@lru_cache(maxsize=1)
def contract() -> dict[str, Any]:
    """famlink/contract/extracts.yaml files section."""
    text = (contract_dir() / "extracts.yaml").read_text("utf-8")
    return yaml.safe_load(text)["files"]


def columns(fname: str) -> list[str]:
    """Contract column order for a file."""
    return list(contract()[fname]["columns"])


@dataclass
class Fault:
    """A fault to plant in one month's file, at the first eligible row from target."""

    kind: str
    target: int


class FileWriter:
    """One delivered file: header, rows, counts, truth records and at most one fault."""

    def __init__(self, path: Path, fname: str, month: str, truth: Truth, variant: int,
                 fault: Fault | None, hook: Callable[[list[str]], list[str]] | None = None
                 ) -> None:
        self.fname, self.month, self.truth, self.fault = fname, month, truth, fault
        self.hook = hook  # the county's recording conventions for this file (or None)
        self.cols = columns(fname)
        bom, crlf = variant & 1, variant & 2
        self.fh = open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="")
        self.w = csv.writer(self.fh, lineterminator="\r\n" if crlf else "\n")
        self.w.writerow(self.cols)
        self.n = 0

    def row(self, values: list[str], bg: bool = True) -> None:
        """Write one data row (planting the pending fault if this row is eligible)."""
        if self.hook is not None:
            values = self.hook(values)
        f = self.fault
        if f is not None and self.n + 1 >= f.target and (bg or f.kind.startswith("invalid")):
            if self._plant(values, f):
                self.fault = None
                return
        self.w.writerow(values)
        self.n += 1

    def _plant(self, values: list[str], f: Fault) -> bool:
        if f.kind in _ID_COLUMN:
            col = _ID_COLUMN[f.kind]
            i = self.cols.index(col)
            if not values[i]:
                return False
            values = list(values)
            values[i] = _BREAK[f.kind](values[i].replace(" ", "").upper())
            self._write(values, col, f.kind)
            return True
        if f.kind == "bad_date":
            spec = contract()[self.fname]["columns"]
            for col in self.cols:
                c = spec[col]
                if c.get("required") and c["type"] in ("date", "timestamp") and values[
                        self.cols.index(col)]:
                    values = list(values)
                    values[self.cols.index(col)] = _BAD_DATES[c["format"]].format(y=self.month[:4])
                    self._write(values, col, f.kind)
                    return True
            return False
        if f.kind == "column_count":
            for i, v in enumerate(values):
                if " " in v.strip():
                    a, b = v.strip().split(" ", 1)
                    self._write(list(values[:i]) + [a, b] + list(values[i + 1:]), "", f.kind)
                    return True
            self._write(list(values) + [""], "", f.kind)
            return True
        if f.kind == "duplicate_key":
            self.w.writerow(values)
            self.n += 1
            self._write(values, "", f.kind)
            return True
        return False

    def _write(self, values: list[str], column: str, kind: str) -> None:
        self.w.writerow(values)
        self.n += 1
        self.truth.fault(self.month, self.fname, self.n, column, kind)

    def close(self) -> int:
        """Close; returns data rows written."""
        self.fh.close()
        return self.n


def plan_faults(seed: int, month_index: int, enabled: bool) -> dict[str, Fault]:
    """Which file gets which fault this month (about two months in three get one)."""
    if not enabled:
        return {}
    rnd = random.Random(seed * 65_537 + month_index * 101 + 7)
    out: dict[str, Fault] = {}
    for _ in range(2):
        if rnd.random() < 0.4:
            kind = rnd.choice(sorted(FAULT_FILES))
            fname = rnd.choice(FAULT_FILES[kind])
            out.setdefault(fname, Fault(kind, rnd.randint(1, 25)))
    return out


def variant(seed: int, month_index: int, fname: str) -> int:
    """BOM (1) / CRLF (2) for about one file in ten, without hashing strings."""
    rnd = random.Random(seed * 1_009 + month_index * 131 + sum(map(ord, fname)) * 7)
    return rnd.choice((1, 2, 3)) if rnd.random() < 0.1 else 0
