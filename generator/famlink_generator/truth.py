"""Ground truth written under out_dir/_truth/ (ingest reads only YYYY-MM folders).

Files (CSV, UTF-8, header row, LF):

- people.csv: true_person_id, first_name, middle_names, last_name, dob (ISO),
  sex, household_id, family_id (empty if not cohort), person_ref (empty if not
  cohort), role (head/partner/child/other_adult: household role), upn,
  nhs_number, ni_number (empty if never issued), twin_of (true_person_id).
- records.csv: file, record_key, true_person_id, for every person-bearing
  record of any delivery, once per key. record_key is the contract key
  columns' values as written, joined with "|" in key order (e.g. OFF0001234,
  INC2301000012|N1234567, N881...|2023/24|AUT, P0100123|JSA|20220301).
  DWP rows returned under a cohort match_ref that belong to someone else carry
  that someone else's true_person_id.
- incidents.csv: incident_ref, household_id (empty for a street location),
  family_id (empty if not a cohort household), matched_by: uprn (the record
  carries the household's UPRN), address (no UPRN but address/postcode) or
  none.
- outcomes.csv: family_id, indicator, person_ref (empty for a family-level
  indicator), problem (headline digit), kind (generator problem kind, see
  data/indicator_kinds.yaml), trajectory (improving / not_improving /
  too_early), change_on (ISO date the behaviour changed: the improvement, or
  for not_improving the first recurrence), attached_on (ISO). A kind the plan
  counts as achieved at the change itself (indicator_kinds.yaml
  achieved_at_change) is labelled improving once its change has happened.
- outcome_months.csv: family_id, indicator, month_end (ISO), achieved (1/0): for
  the problems whose truth is judged on the events the family shows (the plan's
  counting lines declared in indicator_kinds.yaml count_lines, see judge.py), the
  outcome at every month end from attachment to the end of the data; their
  outcomes.csv trajectory and change_on follow the last month end (improving
  from the start of the final achieved spell).
- employment.csv: family_id, person_ref, benefit, off_benefit_on,
  employment_start, qualifies_ce_on (ISO date the continuous-employment
  qualifying period completed - 26 weeks off JSA, 13 off ESA/IS, 13 in UC
  WORKING_ENOUGH, 26 in UC LIGHT_TOUCH, or the plan's own periods where
  indicator_kinds.yaml ce_weeks sets them - empty if not completed by the end
  of the data). Includes short jobs that ended back on benefits (not_improving).
- planted_faults.csv: month, file, row_number (data rows from 1 as written,
  header not counted), column (empty for whole-row faults), kind (invalid_upn,
  invalid_nhs, invalid_ni, bad_date, column_count, duplicate_key).
- manifest.json: config, seed, plan, months, counts {month: {file: rows}},
  bytes, cohort size; under varied or overridden conventions also
  conventions {name: option} and service_names {generator's name: the
  county's} (absent under the defaults, so their manifest is as it was).

Every file but manifest.json is the same for one seed whatever conventions
are drawn (conventions.py renders rows; it never simulates).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

TRUTH_HEADERS = {
    "people.csv": ["true_person_id", "first_name", "middle_names", "last_name", "dob", "sex",
                   "household_id", "family_id", "person_ref", "role", "upn", "nhs_number",
                   "ni_number", "twin_of"],
    "records.csv": ["file", "record_key", "true_person_id"],
    "incidents.csv": ["incident_ref", "household_id", "family_id", "matched_by"],
    "outcomes.csv": ["family_id", "indicator", "person_ref", "problem", "kind", "trajectory",
                     "change_on", "attached_on"],
    "outcome_months.csv": ["family_id", "indicator", "month_end", "achieved"],
    "employment.csv": ["family_id", "person_ref", "benefit", "off_benefit_on",
                       "employment_start", "qualifies_ce_on"],
    "planted_faults.csv": ["month", "file", "row_number", "column", "kind"],
}


def pid(p: int) -> str:
    """true_person_id of resident p."""
    return f"T{p:07d}"


def hid(h: int) -> str:
    """household_id of household h."""
    return f"H{h:07d}"


class Truth:
    """Streaming writer for the _truth folder."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = out_dir / "_truth"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fh: dict[str, Any] = {}
        self._w: dict[str, Any] = {}
        for name, header in TRUTH_HEADERS.items():
            fh = open(self.dir / name, "w", encoding="utf-8", newline="")
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(header)
            self._fh[name], self._w[name] = fh, w
        self._seen: dict[str, set[str]] = {}
        self.faults = 0

    def row(self, name: str, values: list[Any]) -> None:
        """Append one row to a truth file."""
        self._w[name].writerow(values)

    def record(self, file: str, key: str, p: int) -> None:
        """A person-bearing record (deduplicated by file and key)."""
        seen = self._seen.setdefault(file, set())
        if key in seen:
            return
        seen.add(key)
        self._w["records.csv"].writerow((file, key, pid(p)))

    def record_new(self, file: str, key: str, p: int) -> None:
        """A record the caller knows is new (no dedupe bookkeeping: big files)."""
        self._w["records.csv"].writerow((file, key, pid(p)))

    def fault(self, month: str, file: str, row: int, column: str, kind: str) -> None:
        """A planted fault."""
        self.faults += 1
        self._w["planted_faults.csv"].writerow((month, file, row, column, kind))

    def manifest(self, data: dict[str, Any]) -> None:
        """manifest.json, sorted keys for byte-stable output."""
        (self.dir / "manifest.json").write_text(
            json.dumps(data, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")

    def close(self) -> None:
        """Flush and close every file."""
        for fh in self._fh.values():
            fh.close()
