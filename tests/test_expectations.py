"""The Great Expectations suites: derived from the contract, and they catch what they claim.

Clean batches are built from the contract itself (one typed table per
extract, as ingest would hand it over), then broken one rule at a time.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from expectations import DeliveryCheck, ExpectationOutcome, validate_delivery
from expectations.build import build_all, suite_path
from famlink.contract import ExtractSpec, load_contract
from matchers.identifiers import nhs_check_digit, upn_check_letter

AS_OF = dt.date(2025, 3, 31)
SPECS = {spec.name: spec for spec in load_contract().files.values()}
LATER_DATES = {"end_date", "end_at", "case_closed_on", "outcome_date", "to_date"}
# Optional columns a clean batch leaves empty because a plausibility rule ties
# them to another column (a UC regime on a non-UC spell, an end reason on an open one).
EMPTY_WHEN_CLEAN = {"uc_regime", "end_reason", "sessions"}

_ARROW_TYPES = {
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "integer": pa.int64(),
    "decimal": pa.float64(),
}


def _upn(i: int) -> str:
    body = f"{880000000000 + i:012d}"
    return upn_check_letter(body) + body


def _nhs(i: int) -> str:
    n = 400000000 + i
    while nhs_check_digit(f"{n:09d}") is None:
        n += 1
    return f"{n:09d}{nhs_check_digit(f'{n:09d}')}"


def _value(spec: ExtractSpec, name: str, i: int) -> Any:
    col = spec.columns[name]
    later = 30 if name in LATER_DATES else 0
    if name in EMPTY_WHEN_CLEAN:
        return None
    if col.type == "date":
        if name == "dob":
            return dt.date(2010, 1, 1) + dt.timedelta(days=i % 3000)
        return dt.date(2022, 1, 1) + dt.timedelta(days=i % 1000 + later)
    if col.type == "timestamp":
        return dt.datetime(2022, 1, 1, 10, 30) + dt.timedelta(days=i % 1000 + later)
    if col.type == "integer":
        return {"possible_sessions": 120, "score": 5}.get(name, col.min if col.min else 1)
    if col.type == "decimal":
        return 1500.5
    if col.type == "enum":
        return "A" if name == "record_status" else col.values[0]
    if col.type == "upn":
        return _upn(i)
    if col.type == "nhs_number":
        return _nhs(i)
    if col.type == "ni_number":
        return f"AB{i % 1_000_000:06d}C"
    if col.type == "uprn":
        return str(100_000_000 + i)
    if col.type == "postcode":
        return "SS17 8AA"
    if col.pattern:
        return "2023/24"
    return f"{name.upper()}{i:07d}"


def typed_table(spec: ExtractSpec, rows: int = 6) -> pa.Table:
    """A clean typed batch for one extract, typed as ingest types it, plus a lineage column."""
    arrays = {
        name: pa.array(
            [_value(spec, name, i) for i in range(rows)], _ARROW_TYPES.get(col.type, pa.string())
        )
        for name, col in spec.columns.items()
    }
    arrays["_source_row"] = pa.array(range(rows), pa.int64())
    return pa.table(arrays)


def check(name: str, batch: pa.Table | pd.DataFrame) -> DeliveryCheck:
    return validate_delivery(name, batch, as_of=AS_OF)


def only_failure(result: DeliveryCheck, kind: str, column: str) -> ExpectationOutcome:
    failures = result.contract_failures
    assert [(f.expectation_type, f.column) for f in failures] == [(kind, column)], [
        f.describe() for f in failures
    ]
    return failures[0]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_committed_suite_equals_fresh_build(name: str) -> None:
    fresh = build_all()[name]
    committed = suite_path(name).read_text(encoding="utf-8")
    assert committed == fresh, f"run python -m expectations.build: {name}.json drifted"


def test_one_suite_per_extract() -> None:
    assert set(build_all()) == set(SPECS)
    assert len(SPECS) == 14


@pytest.mark.parametrize("name", sorted(SPECS))
def test_clean_batch_passes(name: str) -> None:
    result = check(name, typed_table(SPECS[name]))
    assert result.success, [o.describe() for o in result.contract_failures]
    assert not result.warnings, [o.describe() for o in result.warnings]
    assert all(o.error is None for o in result.outcomes)
    assert result.row_count == 6


def test_pandas_frame_with_date_objects_passes() -> None:
    frame = typed_table(SPECS["cohort_members"]).to_pandas()  # dates as datetime.date objects
    assert check("cohort_members.csv", frame).success


def test_null_required_column_fails() -> None:
    table = typed_table(SPECS["cohort_members"]).to_pandas()
    table.loc[[1, 4], "last_name"] = None
    failure = only_failure(
        check("cohort_members", table), "expect_column_values_to_not_be_null", "last_name"
    )
    assert failure.unexpected_count == 2
    assert failure.element_count == 6


def test_enum_out_of_set_fails() -> None:
    table = typed_table(SPECS["police_incidents"]).to_pandas()
    table.loc[2, "category"] = "BURGLARY"
    failure = only_failure(
        check("police_incidents", table), "expect_column_values_to_be_in_set", "category"
    )
    assert failure.unexpected_count == 1
    assert failure.sample_unexpected == ["BURGLARY"]


def test_duplicate_single_key_fails() -> None:
    table = typed_table(SPECS["cohort_families"]).to_pandas()
    table.loc[3, "family_id"] = table.loc[0, "family_id"]
    failure = only_failure(
        check("cohort_families", table), "expect_compound_columns_to_be_unique",
        "family_id, delivery"
    )
    assert failure.unexpected_count == 2  # both rows that share the key


def test_same_key_in_two_deliveries_of_one_batch_is_fine() -> None:
    table = typed_table(SPECS["cohort_families"]).to_pandas()
    table.loc[3, "family_id"] = table.loc[0, "family_id"]
    table["_delivery_id"] = [1 if i < 3 else 2 for i in range(len(table))]
    assert check("cohort_families", table).contract_failures == []


def test_duplicate_compound_key_fails_and_null_key_parts_are_ignored() -> None:
    table = typed_table(SPECS["school_attendance"]).to_pandas()
    table.loc[1, "upn"] = table.loc[0, "upn"]
    table.loc[1, "academic_year"] = table.loc[0, "academic_year"]
    table.loc[[4, 5], "upn"] = None  # invalid UPNs kept as missing: not duplicates
    result = check("school_attendance", table)
    failure = only_failure(
        result, "expect_compound_columns_to_be_unique", "upn, academic_year, term, delivery"
    )
    assert failure.unexpected_count == 2
    missing_upn = [o for o in result.warnings if o.column == "upn"]
    assert [o.unexpected_count for o in missing_upn] == [2]


def test_integer_out_of_range_fails() -> None:
    table = typed_table(SPECS["yot_offences"]).to_pandas()
    table.loc[0, "gravity_score"] = 9
    table.loc[1, "gravity_score"] = 0
    failure = only_failure(
        check("yot_offences", table), "expect_column_values_to_be_between", "gravity_score"
    )
    assert failure.unexpected_count == 2
    assert sorted(failure.sample_unexpected) == ["0", "9"]


@pytest.mark.parametrize(
    ("name", "column", "bad"),
    [
        ("cohort_members", "upn", "A1234"),
        ("cohort_members", "nhs_number", "943 476 5919"),
        ("cohort_members", "ni_number", "ab123456c"),
        ("cohort_addresses", "uprn", "000123"),
        ("school_attendance", "academic_year", "2023-24"),
    ],
)
def test_bad_identifier_or_pattern_fails(name: str, column: str, bad: str) -> None:
    table = typed_table(SPECS[name]).to_pandas()
    table.loc[2, column] = bad
    failure = only_failure(check(name, table), "expect_column_values_to_match_regex", column)
    assert failure.unexpected_count == 1
    assert failure.sample_unexpected == [bad]


def test_columns_out_of_contract_order_fail() -> None:
    table = typed_table(SPECS["cohort_families"]).to_pandas()
    table = table[["attached_on", "family_id", "lead_worker", "case_closed_on", "_source_row"]]
    failure = only_failure(
        check("cohort_families", table), "expect_table_columns_to_match_ordered_list", None
    )
    assert failure.unexpected_count == 2


def test_warnings_fire_and_are_not_contract_failures() -> None:
    episodes = typed_table(SPECS["social_care_episodes"]).to_pandas()
    episodes.loc[0, "end_date"] = dt.date(2021, 1, 1)  # before start_date 2022-01-01
    result = check("social_care_episodes", episodes)
    assert result.success
    assert [(w.column, w.unexpected_count) for w in result.warnings] == [
        ("end_date, start_date", 1)
    ]

    school = typed_table(SPECS["school_attendance"]).to_pandas()
    school.loc[3, ["authorised_absence", "unauthorised_absence"]] = [70, 60]  # 130 > 120
    result = check("school_attendance", school)
    assert result.success
    (warning,) = result.warnings
    assert warning.column == "possible_sessions, _derived_absence_sessions"
    assert warning.unexpected_count == 1
    assert warning.severity == "warning"


def test_implausible_dates_warn() -> None:
    members = typed_table(SPECS["cohort_members"]).to_pandas()
    members.loc[0, "dob"] = dt.date(2026, 1, 1)  # after AS_OF
    members.loc[1, "dob"] = dt.date(1, 1, 1)  # a year typo, far outside datetime64[ns]
    result = check("cohort_members", members)
    assert result.success
    (warning,) = result.warnings
    assert (warning.column, warning.unexpected_count) == ("dob", 2)


def test_deletions_in_a_delta_need_only_their_key() -> None:
    spec = SPECS["yot_offences"]
    table = typed_table(spec).to_pandas()
    non_key = [c for c in spec.columns if c not in spec.key and c != "record_status"]
    table.loc[[1, 2], non_key] = None
    table.loc[[1, 2], "record_status"] = "D"
    result = check("yot_offences", table)
    assert result.success, [o.describe() for o in result.contract_failures]

    table.loc[2, "record_status"] = None  # no status: a normal record, which needs its columns
    result = check("yot_offences", table)
    failed = {o.column for o in result.contract_failures}
    assert failed == {c for c in non_key if spec.columns[c].required}
    assert all(o.unexpected_count == 1 for o in result.contract_failures)


def test_missing_column_is_a_contract_failure_not_a_crash() -> None:
    table = typed_table(SPECS["dwp_employment"]).drop_columns(["employer_ref"])
    result = check("dwp_employment", table)
    kinds = {o.expectation_type for o in result.contract_failures}
    assert "expect_table_columns_to_match_ordered_list" in kinds
    assert not result.success


def test_nullable_integer_frame_is_checked() -> None:
    table = typed_table(SPECS["yot_offences"]).to_pandas()
    table["gravity_score"] = table["gravity_score"].astype("Int64")
    table.loc[0, "gravity_score"] = 12
    failure = only_failure(
        check("yot_offences", table), "expect_column_values_to_be_between", "gravity_score"
    )
    assert failure.sample_unexpected == ["12"]


def test_import_does_not_load_great_expectations() -> None:
    code = "import sys, expectations; assert 'great_expectations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
