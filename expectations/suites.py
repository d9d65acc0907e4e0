"""Build a Great Expectations suite (as plain JSON data) from one contract extract.

The suites are data, not code, so that ``python -m expectations.build`` can
commit them and a test can prove the committed JSON still equals what the
contract implies: a suite cannot drift from ``extracts.yaml`` unnoticed.
Building needs no Great Expectations import; the run-time loader
(``expectations.validate_delivery``) turns the dictionaries into GX objects.

Two severities, kept in each expectation's ``meta.severity``:

* ``contract``: what the contract states and ingest must already have enforced
  on the typed batch; a failure here means ingest let something through.
* ``warning``: plausibility the contract implies but does not make a row rule
  (end before start, absences above possible sessions); reported, never a reject.
"""

from __future__ import annotations

from typing import Any

from famlink.contract import IDENTIFIER_TYPES, ColumnSpec, ExtractSpec

CONTRACT = "contract"
WARNING = "warning"

# Canonical forms of identifiers after ingest normalisation (see
# matchers/identifiers.py): the regex is the shape only; check digits were
# verified by ingest, which nulls an identifier that fails them.
_UPN_LETTERS = "A-HJ-NP-RT-Z"  # ABCDEFGHJKLMNPQRTUVWXYZ
IDENTIFIER_REGEX: dict[str, str] = {
    "upn": rf"^[{_UPN_LETTERS}][0-9]{{11}}[0-9{_UPN_LETTERS}]$",
    "nhs_number": r"^[0-9]{10}$",
    "ni_number": r"^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]$",
    "uprn": r"^[1-9][0-9]{0,11}$",
}
# A UK postcode in any case and spacing, as the contract allows it raw.
POSTCODE_REGEX = r"^\s*[A-Za-z]{1,2}[0-9][A-Za-z0-9]?\s*[0-9][A-Za-z]{2}\s*$"

EARLIEST_DATE = "1900-01-01T00:00:00"
# Suite parameters supplied at validation time (the run's as-of date), so the
# committed JSON does not depend on the day it was built.
PARAM_AS_OF = "as_of"
PARAM_LATEST = "latest_plausible"
SUITE_PARAMETERS = {
    PARAM_AS_OF: "the run's as-of date (end of day): a date of birth cannot be later",
    PARAM_LATEST: "as_of + 366 days: later than that no recorded date is plausible",
}

# Later/earlier date pairs the contract's column names imply: (later, earlier).
DATE_PAIRS: tuple[tuple[str, str], ...] = (
    ("end_date", "start_date"),
    ("end_at", "start_at"),
    ("case_closed_on", "attached_on"),
    ("outcome_date", "offence_date"),
    ("to_date", "from_date"),
    ("offence_date", "dob"),
)

# Derived columns validate_delivery appends before validation, for checks GX
# has no multi-column arithmetic for. Named with "_" like lineage columns, so
# they can never collide with a contract column.
DERIVED_PREFIX = "_derived_"
ABSENCE_TOTAL = f"{DERIVED_PREFIX}absence_sessions"


DELIVERY_COLUMN = "delivery"


def _exp(kind: str, severity: str, why: str, /, **kwargs: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "kwargs": kwargs,
        "meta": {"severity": severity, "why": why},
        "severity": "critical" if severity == CONTRACT else "warning",
    }


def derived_columns(spec: ExtractSpec) -> dict[str, list[str]]:
    """Derived column name -> the contract columns it sums (appended in this order)."""
    cols = spec.columns
    if {"authorised_absence", "unauthorised_absence", "possible_sessions"} <= cols.keys():
        return {ABSENCE_TOTAL: ["authorised_absence", "unauthorised_absence"]}
    return {}


def _not_deleted(spec: ExtractSpec) -> dict[str, Any] | None:
    """Row condition keeping delta rows that are not deletions (null status counts as A)."""
    if spec.delivery == "delta" and spec.has_record_status:
        return {
            "type": "comparison",
            "column": {"name": "record_status"},
            "operator": "!=",
            "parameter": "D",
        }
    return None


def _column_expectations(spec: ExtractSpec, col: ColumnSpec) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    name = col.name
    if col.required:
        if col.type in IDENTIFIER_TYPES:
            out.append(
                _exp(
                    "expect_column_values_to_not_be_null",
                    WARNING,
                    "required identifier missing: invalid at source, kept as missing",
                    column=name,
                )
            )
        else:
            kwargs: dict[str, Any] = {"column": name}
            condition = _not_deleted(spec)
            why = "required"
            if condition is not None and name not in spec.key:
                kwargs["row_condition"] = condition
                why = "required (a deletion row needs only its key)"
            out.append(_exp("expect_column_values_to_not_be_null", CONTRACT, why, **kwargs))
    if col.type == "enum" and col.values:
        out.append(
            _exp(
                "expect_column_values_to_be_in_set",
                CONTRACT,
                "enum value",
                column=name,
                value_set=list(col.values),
            )
        )
    if col.type == "integer" and (col.min is not None or col.max is not None):
        kwargs = {"column": name}
        if col.min is not None:
            kwargs["min_value"] = col.min
        if col.max is not None:
            kwargs["max_value"] = col.max
        out.append(_exp("expect_column_values_to_be_between", CONTRACT, "integer range", **kwargs))
    if col.pattern:
        out.append(
            _exp(
                "expect_column_values_to_match_regex",
                CONTRACT,
                "contract pattern",
                column=name,
                regex=col.pattern,
            )
        )
    if col.type in IDENTIFIER_REGEX:
        out.append(
            _exp(
                "expect_column_values_to_match_regex",
                CONTRACT,
                f"canonical {col.type}",
                column=name,
                regex=IDENTIFIER_REGEX[col.type],
            )
        )
    out.extend(_plausibility(spec, col))
    return out


def _plausibility(spec: ExtractSpec, col: ColumnSpec) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    name = col.name
    if col.type in ("date", "timestamp"):
        latest = PARAM_AS_OF if name == "dob" else PARAM_LATEST
        why = (
            "date of birth from 1900 to the as-of date"
            if name == "dob"
            else ("date from 1900 to a year after the as-of date")
        )
        out.append(
            _exp(
                "expect_column_values_to_be_between",
                WARNING,
                why,
                column=name,
                min_value=EARLIEST_DATE,
                max_value={"$PARAMETER": latest},
            )
        )
    if col.type == "postcode":
        out.append(
            _exp(
                "expect_column_values_to_match_regex",
                WARNING,
                "UK postcode shape",
                column=name,
                regex=POSTCODE_REGEX,
            )
        )
    if col.type == "decimal" and name == "monthly_earnings":
        out.append(
            _exp(
                "expect_column_values_to_be_between",
                WARNING,
                "earnings are not negative",
                column=name,
                min_value=0,
            )
        )
    if spec.name == "practitioner_evidence" and name == "score":
        out.append(
            _exp(
                "expect_column_values_to_be_between",
                WARNING,
                "Family Star Plus reading is 1-10",
                column=name,
                min_value=1,
                max_value=10,
            )
        )
    if spec.name == "school_exclusions" and name == "sessions":
        out.append(
            _exp(
                "expect_column_values_to_be_null",
                WARNING,
                "sessions empty for PERMANENT",
                column=name,
                row_condition={
                    "type": "comparison",
                    "column": {"name": "category"},
                    "operator": "==",
                    "parameter": "PERMANENT",
                },
            )
        )
    if name == "uc_regime" and "benefit" in spec.columns:
        out.append(
            _exp(
                "expect_column_values_to_be_null",
                WARNING,
                "a UC regime only on a UC spell",
                column=name,
                row_condition={
                    "type": "comparison",
                    "column": {"name": "benefit"},
                    "operator": "!=",
                    "parameter": "UC",
                },
            )
        )
    if name == "end_reason" and "end_date" in spec.columns:
        out.append(
            _exp(
                "expect_column_values_to_be_null",
                WARNING,
                "an end reason only on an ended episode",
                column=name,
                row_condition={"type": "nullity", "column": {"name": "end_date"}, "is_null": True},
            )
        )
    return out


def build_suite(spec: ExtractSpec) -> dict[str, Any]:
    """The suite for one extract as JSON-ready data, in a stable order.

    A batch may hold several deliveries of the extract (a run that loads a
    year of history validates each extract once): the key must be unique
    within a delivery, so ``delivery`` is part of every key check.
    """
    derived = derived_columns(spec)
    expectations: list[dict[str, Any]] = [
        _exp(
            "expect_table_columns_to_match_ordered_list",
            CONTRACT,
            "contract columns in order (lineage '_' columns dropped, derived ones and the "
            "delivery appended)",
            column_list=[*spec.column_names, *derived, DELIVERY_COLUMN],
        )
    ]
    for col in spec.columns.values():
        expectations.extend(_column_expectations(spec, col))
    expectations.append(
        _exp(
            "expect_compound_columns_to_be_unique",
            CONTRACT,
            "key unique in the delivery (rows with a missing key part ignored)",
            column_list=[*spec.key, DELIVERY_COLUMN],
            ignore_row_if="any_value_is_missing",
        )
    )
    cols = spec.columns
    for later, earlier in DATE_PAIRS:
        if later in cols and earlier in cols and cols[later].type == cols[earlier].type:
            expectations.append(
                _exp(
                    "expect_column_pair_values_a_to_be_greater_than_b",
                    WARNING,
                    f"{later} not before {earlier}",
                    column_A=later,
                    column_B=earlier,
                    or_equal=True,
                    ignore_row_if="either_value_is_missing",
                )
            )
    if ABSENCE_TOTAL in derived:
        expectations.append(
            _exp(
                "expect_column_pair_values_a_to_be_greater_than_b",
                WARNING,
                "authorised + unauthorised absence not above possible sessions",
                column_A="possible_sessions",
                column_B=ABSENCE_TOTAL,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        )
    return {
        "name": spec.name,
        "expectations": expectations,
        "meta": {
            "derived_columns": derived,
            "generated_by": "python -m expectations.build (from famlink/contract/extracts.yaml)",
            "key": list(spec.key),
            "delivery": spec.delivery,
            "suite_parameters": SUITE_PARAMETERS,
        },
    }
