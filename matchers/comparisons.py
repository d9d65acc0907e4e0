"""Comparisons for English person records, as small composable objects.

Each comparison is data (SQL conditions with starting m/u values) rendered to a
Splink 5 settings dict; training replaces the m/u values and the result is
saved as JSON. The levels encode how English records go wrong: nicknames
(Bill/William), forename and surname swapped, people known by a middle name,
double-barrelled surnames, DOB day/month transpositions and one-digit slips,
house moves within a postcode history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Level:
    """One comparison level: a SQL condition over ``_l``/``_r`` columns."""

    sql: str
    label: str
    m: float | None = None
    u: float | None = None
    is_null: bool = False
    tf_column: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"sql_condition": self.sql, "label_for_charts": self.label}
        if self.is_null:
            d["is_null_level"] = True
            return d
        if self.m is not None:
            d["m_probability"] = self.m
        if self.u is not None:
            d["u_probability"] = self.u
        if self.tf_column:
            d["tf_adjustment_column"] = self.tf_column
            d["tf_adjustment_weight"] = 1.0
            d["tf_minimum_u_value"] = 0.0001
        return d


@dataclass(frozen=True)
class Comparison:
    """A named, ordered list of levels (first matching level wins)."""

    name: str
    description: str
    levels: tuple[Level, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "output_column_name": self.name,
            "comparison_description": self.description,
            "comparison_levels": [lv.as_dict() for lv in self.levels],
        }


def null_level(*cols: str) -> Level:
    cond = " OR ".join(f"{c}_l IS NULL OR {c}_r IS NULL" for c in cols)
    return Level(cond, "null", is_null=True)


def else_level(m: float, u: float) -> Level:
    return Level("ELSE", "all other", m, u)


# Forename and surname swapped, allowing a typo in either.
SWAPPED_SQL = (
    "jaro_winkler_similarity(first_name_l, last_name_r) >= 0.9 AND "
    "jaro_winkler_similarity(last_name_l, first_name_r) >= 0.9"
)

# Names compatible enough to be one person; also used by the twin guard.
FIRST_NAME_COMPATIBLE_SQL = """(
    first_name_l = first_name_r
    OR list_has_any(first_name_groups_l, first_name_groups_r)
    OR jaro_winkler_similarity(first_name_l, first_name_r) >= 0.9
    OR (length(first_name_l) >= 4 AND damerau_levenshtein(first_name_l, first_name_r) <= 1)
    OR ((length(first_name_l) = 1 OR length(first_name_r) = 1)
        AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1))
    OR list_contains(other_names_r, first_name_l) OR list_contains(other_names_l, first_name_r)
    OR jaro_winkler_similarity(first_name_l, last_name_r) >= 0.9
    OR jaro_winkler_similarity(first_name_r, last_name_l) >= 0.9
)"""


def first_name_comparison() -> Comparison:
    return Comparison(
        "first_name",
        "Forename: exact, nickname, typo, initial, middle name used, swapped with surname",
        (
            null_level("first_name"),
            Level("first_name_l = first_name_r", "exact", 0.85, 0.01, tf_column="first_name"),
            Level(
                "list_has_any(first_name_groups_l, first_name_groups_r)",
                "nickname of one formal name", 0.04, 0.002,
            ),
            Level(
                "jaro_winkler_similarity(first_name_l, first_name_r) >= 0.92 OR "
                "(length(first_name_l) >= 4 AND "
                "damerau_levenshtein(first_name_l, first_name_r) <= 1)",
                "typo (JW >= 0.92 or one edit)", 0.05, 0.003,
            ),
            Level(SWAPPED_SQL, "forename and surname swapped", 0.02, 0.00002),
            Level(
                "list_contains(other_names_r, first_name_l) OR "
                "list_contains(other_names_l, first_name_r)",
                "known by a middle name", 0.01, 0.0005,
            ),
            Level(
                "(length(first_name_l) = 1 OR length(first_name_r) = 1) AND "
                "substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)",
                "initial agrees", 0.01, 0.01,
            ),
            Level(
                "jaro_winkler_similarity(first_name_l, first_name_r) >= 0.8",
                "similar (JW >= 0.8)", 0.01, 0.03,
            ),
            else_level(0.01, 0.945),
        ),
    )


def last_name_comparison() -> Comparison:
    return Comparison(
        "last_name",
        "Surname: exact, typo, part of a double-barrelled name, swapped with forename",
        (
            null_level("last_name"),
            Level("last_name_l = last_name_r", "exact", 0.88, 0.002, tf_column="last_name"),
            Level(
                "jaro_winkler_similarity(last_name_l, last_name_r) >= 0.92 OR "
                "(length(last_name_l) >= 4 AND damerau_levenshtein(last_name_l, last_name_r) <= 1)",
                "typo (JW >= 0.92 or one edit)", 0.05, 0.002,
            ),
            Level(SWAPPED_SQL, "surname and forename swapped", 0.02, 0.00002),
            Level(
                "list_has_any(last_name_tokens_l, last_name_tokens_r)",
                "shares a part (double-barrelled)", 0.02, 0.0005,
            ),
            Level(
                "jaro_winkler_similarity(last_name_l, last_name_r) >= 0.8",
                "similar (JW >= 0.8)", 0.01, 0.03,
            ),
            else_level(0.02, 0.96),
        ),
    )


def dob_comparison() -> Comparison:
    return Comparison(
        "dob",
        "Date of birth: exact, day/month transposed or one digit wrong, same year",
        (
            null_level("dob"),
            Level("dob_l = dob_r", "exact", 0.9, 0.0001),
            Level(
                "(year(dob_l) = year(dob_r) AND month(dob_l) = day(dob_r) "
                "AND day(dob_l) = month(dob_r)) OR damerau_levenshtein(dob_str_l, dob_str_r) <= 1",
                "transposed or one digit", 0.07, 0.002,
            ),
            Level(
                "abs(date_diff('day', dob_l, dob_r)) <= 366",
                "within a year", 0.01, 0.03,
            ),
            else_level(0.02, 0.968),
        ),
    )


def sex_comparison() -> Comparison:
    return Comparison(
        "sex",
        "Recorded sex",
        (null_level("sex"), Level("sex_l = sex_r", "exact", 0.97, 0.5), else_level(0.03, 0.5)),
    )


def postcode_comparison() -> Comparison:
    return Comparison(
        "postcode",
        "Postcode: exact, in the other's address history, same sector, same district",
        (
            Level(
                "(postcode_l IS NULL OR postcode_r IS NULL) AND "
                "(postcodes_l IS NULL OR postcodes_r IS NULL "
                "OR len(postcodes_l) = 0 OR len(postcodes_r) = 0)",
                "null", is_null=True,
            ),
            Level("postcode_l = postcode_r", "exact", 0.7, 0.001, tf_column="postcode"),
            Level("list_has_any(postcodes_l, postcodes_r)", "in address history", 0.1, 0.002),
            Level("postcode_sector_l = postcode_sector_r", "same sector", 0.05, 0.02),
            Level("postcode_district_l = postcode_district_r", "same district", 0.05, 0.1),
            else_level(0.1, 0.877),
        ),
    )


def address_comparison() -> Comparison:
    return Comparison(
        "address",
        "First address line (only the link command's inputs and cohort carry it)",
        (
            null_level("address"),
            Level("address_l = address_r", "exact", 0.7, 0.001),
            Level("jaro_winkler_similarity(address_l, address_r) >= 0.9", "similar", 0.15, 0.01),
            else_level(0.15, 0.989),
        ),
    )


def identifier_comparison() -> Comparison:
    ids = ("upn", "nhs_number", "ni_number")
    both = [f"({c}_l IS NOT NULL AND {c}_r IS NOT NULL)" for c in ids]
    return Comparison(
        "identifiers",
        "Strong identifiers: one agrees, or present on both sides and all disagree",
        (
            Level(f"NOT ({' OR '.join(both)})", "null", is_null=True),
            Level(
                "upn_l = upn_r OR nhs_number_l = nhs_number_r OR ni_number_l = ni_number_r",
                "an identifier agrees", 0.95, 0.00001,
            ),
            else_level(0.05, 0.99999),
        ),
    )


def person_comparisons() -> list[Comparison]:
    return [
        first_name_comparison(),
        last_name_comparison(),
        dob_comparison(),
        sex_comparison(),
        postcode_comparison(),
        address_comparison(),
        identifier_comparison(),
    ]


# Blocking: each rule survives a different error (a DOB typo, a first-name change,
# a house move), so together they find the pairs any single error would hide.
BLOCKING_RULES = [
    "l.dob = r.dob AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
    "l.dob = r.dob AND substr(l.last_name, 1, 2) = substr(r.last_name, 1, 2)",
    "l.dob = r.dob AND substr(l.first_name, 1, 1) = substr(r.last_name, 1, 1)",
    "l.dob = r.dob AND l.postcode = r.postcode",
    "l.postcode = r.postcode AND substr(l.first_name, 1, 2) = substr(r.last_name, 1, 2)",
    "l.first_name = r.first_name AND l.last_name = r.last_name",
    "list_has_any(l.first_name_groups, r.first_name_groups) AND l.last_name = r.last_name "
    "AND year(l.dob) = year(r.dob)",
    "l.postcode = r.postcode AND substr(l.first_name, 1, 2) = substr(r.first_name, 1, 2)",
    "l.upn = r.upn",
    "l.nhs_number = r.nhs_number",
    "l.ni_number = r.ni_number",
]


def person_settings(
    link_type: str = "dedupe_only", probability_two_random_records_match: float = 1e-5
) -> dict[str, Any]:
    """Splink settings dict of the person model (untrained starting values)."""
    return {
        "link_type": link_type,
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": probability_two_random_records_match,
        "comparisons": [c.as_dict() for c in person_comparisons()],
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": r, "sql_dialect": "duckdb"} for r in BLOCKING_RULES
        ],
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": False,
        "additional_columns_to_retain": [],
        "max_iterations": 20,
        "em_convergence": 0.0001,
    }
