"""Comparisons for English person records, as small composable objects.

Each comparison is data (SQL conditions with starting m/u values) rendered to a
Splink 5 settings dict; training replaces the m/u values and the result is
saved as JSON. The levels encode how English records go wrong: nicknames
(Bill/William), forename and surname swapped, people known by a middle name,
double-barrelled surnames, DOB day/month transpositions and one-digit slips,
house moves within a postcode history.
"""

from __future__ import annotations

import re
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
    fix_m: bool = False

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"sql_condition": self.sql, "label_for_charts": self.label}
        if self.is_null:
            d["is_null_level"] = True
            return d
        if self.m is not None:
            d["m_probability"] = self.m
        if self.u is not None:
            d["u_probability"] = self.u
        if self.fix_m:
            d["fix_m_probability"] = True
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


# Macros the comparison levels use, installed in the database Splink scores in
# (``install_comparison_macros``). Soundex (American rules, H and W transparent):
# a phonetic code for names spelt as heard ("Cathryn" / "Kathryn" differ in the
# first letter and stay apart; "Meagan" / "Megan", "Thomson" / "Thompson" agree).
COMPARISON_MACROS = r"""
CREATE OR REPLACE MACRO fl_sdx_collapse(x) AS
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        x, '1+', '1', 'g'), '2+', '2', 'g'), '3+', '3', 'g'), '4+', '4', 'g'), '5+', '5', 'g'),
        '6+', '6', 'g');
CREATE OR REPLACE MACRO fl_sdx_of(s) AS CASE WHEN s <> '' THEN left(rpad(substr(s, 1, 1)
    || replace(substr(fl_sdx_collapse(translate(s, 'AEIOUYBFPVCGJKQSXZDTLMNRHW',
                                                '000000111122222222334556')), 2), '0', ''),
    4, '0'), 4) END;
CREATE OR REPLACE MACRO fl_soundex(v) AS
    fl_sdx_of(regexp_replace(upper(coalesce(v, '')), '[^A-Z]', '', 'g'));
CREATE OR REPLACE MACRO fl_house_number(a) AS
    nullif(regexp_extract(coalesce(a, ''), '^\s*([0-9]+[A-Za-z]?)\b', 1), '');
CREATE OR REPLACE MACRO fl_street(a) AS
    nullif(trim(regexp_replace(coalesce(a, ''), '^\s*[0-9]+[A-Za-z]?\b[\s,]*', '')), '');
"""


# Per-record columns the levels compare, computed once per record in the scoring
# database rather than once per pair (``derived_columns_sql``).
# How many records of the table carry the forename (NULL below
# ``RARE_NAME_MIN_RECORDS`` records, where every name looks rare): a typing error
# makes a string seen once, a second child's name is seen elsewhere too.
RARE_NAME_MIN_RECORDS = 2000


def with_first_name_seen_sql(table: str) -> str:
    """``table`` with ``first_name_seen``: how many of its records carry the forename
    (a NULL forename counts its NULLs), NULL below ``RARE_NAME_MIN_RECORDS`` records.
    Counted by a grouping joined back (a window over a county's wide rows costs
    four times as much)."""
    return f"""SELECT t.*, CASE WHEN (SELECT count(*) FROM {table}) >= {RARE_NAME_MIN_RECORDS}
                   THEN n.n_first_name END AS first_name_seen
        FROM {table} AS t LEFT JOIN (SELECT first_name, count(*) AS n_first_name FROM {table}
                                     GROUP BY first_name) AS n
          ON n.first_name IS NOT DISTINCT FROM t.first_name"""


DERIVED_COLUMNS = {
    "first_name_sdx": "fl_soundex(first_name)",
    "last_name_sdx": "fl_soundex(last_name)",
    "house_number": "fl_house_number(address)",
    "street": "replace(fl_street(address), ' ', '')",
}


def derived_columns_sql(table: str, present: frozenset[str] = frozenset()) -> str:
    """``table`` with the derived comparison columns added (but those ``present``
    already: an incremental run counts ``first_name_seen`` over the whole county
    before it gives Splink only the rows near the new ones)."""
    cols = "".join(f", {sql} AS {name}" for name, sql in DERIVED_COLUMNS.items()
                   if name not in present)
    source = table if "first_name_seen" in present else f"({with_first_name_seen_sql(table)})"
    return f"SELECT *{cols} FROM {source}"


def install_comparison_macros(con: Any) -> None:
    """Create the macros the comparison levels call (``COMPARISON_MACROS``)."""
    for stmt in COMPARISON_MACROS.split(";"):
        if stmt.strip():
            con.execute(stmt)


def null_level(*cols: str) -> Level:
    cond = " OR ".join(f"{c}_l IS NULL OR {c}_r IS NULL" for c in cols)
    return Level(cond, "null", is_null=True)


def else_level(m: float, u: float) -> Level:
    return Level("ELSE", "all other", m, u)


# The predicates below are defined once, here, over ``_l``/``_r`` columns, and
# used by the comparison levels and the guards alike; ``matchers.clustering``
# has their Python twins (``names_compatible``, ``dob_slip``), which
# ``tests/test_predicates.py`` checks against this SQL on many generated pairs.

# Forename and surname swapped, allowing a typo in either.
SWAPPED_SQL = (
    "jaro_winkler_similarity(first_name_l, last_name_r) >= 0.9 AND "
    "jaro_winkler_similarity(last_name_l, first_name_r) >= 0.9"
)

# A forename written as two words on one record and as one on the other ("Anne
# Marie" / "Annemarie", or a stray space: "Gabr ielle"): the standardiser reads the
# second word as a middle name, so the forename and the middle names are joined
# again and compared with the other side's forename (one edit allowed).
SPLIT_FORENAME_SQL = """(
    (coalesce(array_length(other_names_l), 0) > 0
     AND damerau_levenshtein(first_name_l || array_to_string(other_names_l, ''), first_name_r)
         <= 1)
    OR (coalesce(array_length(other_names_r), 0) > 0
        AND damerau_levenshtein(first_name_r || array_to_string(other_names_r, ''), first_name_l)
            <= 1)
)"""

# A forename mistyped more than the typo tests allow: one side's forename is seen
# only once in the data (a string no one else carries), has the other's initial,
# and is within two edits of it (one, for names under five letters). Two real
# names of twins (Oliver and Olivia) are each seen elsewhere, and stay apart.
RARE_TYPO_SQL = """(
    least(first_name_seen_l, first_name_seen_r) = 1
    AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)
    AND damerau_levenshtein(first_name_l, first_name_r)
        <= CASE WHEN least(length(first_name_l), length(first_name_r)) >= 5 THEN 2 ELSE 1 END
)"""

# Names compatible enough to be one person (a nickname, a typo, an initial, a
# middle name used as forename, forename and surname swapped); the twin guard
# refuses a same-DOB pair without it. Both forenames are present; a missing
# surname or middle-name list counts as no evidence (never as NULL, which would
# switch the guard off). Python twin: ``clustering.names_compatible``.
FIRST_NAME_COMPATIBLE_SQL = f"""(
    first_name_l = first_name_r
    OR list_has_any(first_name_groups_l, first_name_groups_r)
    OR jaro_winkler_similarity(first_name_l, first_name_r) >= 0.9
    OR (least(length(first_name_l), length(first_name_r)) >= 4
        AND damerau_levenshtein(first_name_l, first_name_r) <= 1)
    OR ((length(first_name_l) = 1 OR length(first_name_r) = 1)
        AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1))
    OR coalesce(list_contains(other_names_r, first_name_l), false)
    OR coalesce(list_contains(other_names_l, first_name_r), false)
    OR {SPLIT_FORENAME_SQL}
    OR coalesce({RARE_TYPO_SQL}, false)
    OR jaro_winkler_similarity(first_name_l, coalesce(last_name_r, '')) >= 0.9
    OR jaro_winkler_similarity(first_name_r, coalesce(last_name_l, '')) >= 0.9
)"""

# A full forename agrees (no initials): what the household guard asks of a pair
# whose surname and address are shared by everyone at the house.
FULL_FORENAME_AGREES_SQL = f"""(
    (length(first_name_l) > 1 AND length(first_name_r) > 1 AND (
        first_name_l = first_name_r
        OR list_has_any(first_name_groups_l, first_name_groups_r)
        OR jaro_winkler_similarity(first_name_l, first_name_r) >= 0.92
        OR (length(first_name_l) >= 4
            AND damerau_levenshtein(first_name_l, first_name_r) <= 1)
        OR coalesce({RARE_TYPO_SQL}, false)))
    OR list_contains(other_names_r, first_name_l)
    OR list_contains(other_names_l, first_name_r)
    OR {SPLIT_FORENAME_SQL}
    OR ({SWAPPED_SQL})
)"""

# One date of birth a typing slip of the other: one digit wrong (or two adjacent
# digits swapped) in the ISO text, or day and month transposed. Python twin:
# ``clustering.dob_slip``.
DOB_SLIP_SQL = (
    "(damerau_levenshtein(dob_str_l, dob_str_r) <= 1 OR (year(dob_l) = year(dob_r) "
    "AND month(dob_l) = day(dob_r) AND day(dob_l) = month(dob_r)))"
)

def between(sql: str, left: str, right: str) -> str:
    """A pair predicate over ``_l``/``_r`` columns, applied to two table aliases
    (``between(DOB_SLIP_SQL, "x", "y")`` compares ``x.dob_str`` with ``y.dob_str``)."""
    return re.sub(r"\b([a-z][a-z_]*)_([lr])\b",
                  lambda m: f"{left if m.group(2) == 'l' else right}.{m.group(1)}", sql)


# A strong identifier (UPN, NHS number, NI number) agrees.
IDENTIFIER_AGREES_SQL = (
    "(upn_l = upn_r OR nhs_number_l = nhs_number_r OR ni_number_l = ni_number_r)"
)


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
            Level(
                "least(length(first_name_l), length(first_name_r)) >= 6 AND "
                "damerau_levenshtein(first_name_l, first_name_r) <= 2",
                "two small errors (two edits, 6+ letters)", 0.02, 0.0005,
            ),
            Level(SPLIT_FORENAME_SQL, "written as two words (a space inside)", 0.01, 0.0001),
            Level(SWAPPED_SQL, "forename and surname swapped", 0.02, 0.00002),
            # One name moved to the other field and the other mistyped or replaced.
            Level(
                "first_name_l = last_name_r OR last_name_l = first_name_r",
                "half swapped (one name in the other's field)", 0.005, 0.0002,
            ),
            Level(
                "list_contains(other_names_r, first_name_l) OR "
                "list_contains(other_names_l, first_name_r)",
                "known by a middle name", 0.01, 0.0005,
            ),
            Level(
                "least(length(first_name_l), length(first_name_r)) > 1 AND "
                "first_name_sdx_l = first_name_sdx_r",
                "sounds alike (soundex)", 0.01, 0.003,
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
            Level(
                "least(length(last_name_l), length(last_name_r)) >= 6 AND "
                "damerau_levenshtein(last_name_l, last_name_r) <= 2",
                "two small errors (two edits, 6+ letters)", 0.02, 0.0005,
            ),
            # A swap is one piece of evidence, weighed once, by the forename comparison.
            Level(SWAPPED_SQL, "swapped with forename (weighed by the forename)", is_null=True),
            Level(
                "list_has_any(last_name_tokens_l, last_name_tokens_r)",
                "shares a part (double-barrelled)", 0.02, 0.0005,
            ),
            Level("last_name_sdx_l = last_name_sdx_r",
                  "sounds alike (soundex)", 0.01, 0.002),
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
        "Date of birth: exact, day/month transposed or one digit wrong, one of day, month "
        "and year wrong, within a year",
        (
            null_level("dob"),
            # Term frequencies: some dates are far commoner than chance (1 January
            # for people whose birth date is not known, a system's default date).
            Level("dob_l = dob_r", "exact", 0.9, 0.0001, tf_column="dob"),
            Level(DOB_SLIP_SQL, "transposed or one digit", 0.07, 0.002),
            # One part wrong: two of day, month and year agree (a mistyped year is
            # a slip only within the generation guard's ten years).
            Level(
                "(year(dob_l) = year(dob_r) AND (month(dob_l) = month(dob_r) "
                "OR day(dob_l) = day(dob_r))) OR (month(dob_l) = month(dob_r) "
                "AND day(dob_l) = day(dob_r) AND abs(year(dob_l) - year(dob_r)) < 10)",
                "one of day, month, year wrong", 0.03, 0.004,
            ),
            Level(
                "abs(date_diff('day', dob_l, dob_r)) <= 366",
                "within a year", 0.01, 0.03,
            ),
            # A generation apart is not a typing error (those are caught above): it
            # is a parent and child of one name. m is fixed, because EM would learn
            # it from exactly those same-name, same-address families.
            Level(
                "abs(date_diff('year', dob_l, dob_r)) >= 10",
                "ten or more years apart", 0.002, 0.5, fix_m=True,
            ),
            else_level(0.02, 0.968),
        ),
    )


def sex_comparison() -> Comparison:
    return Comparison(
        "sex",
        "Recorded sex",
        # m is fixed: sex is wrong or changed on a few records of one person, which
        # synthetic training data (or a county with clean sex fields) would not show.
        (
            null_level("sex"),
            Level("sex_l = sex_r", "exact", 0.985, 0.5, fix_m=True),
            Level("ELSE", "all other", 0.015, 0.5, fix_m=True),
        ),
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
            # A postcode mistyped: one character wrong, or two adjacent swapped.
            Level("damerau_levenshtein(postcode_l, postcode_r) <= 1",
                  "one character wrong (a typo)", 0.03, 0.005),
            Level("postcode_district_l = postcode_district_r", "same district", 0.05, 0.1),
            Level(
                "postcode_is_location_l OR postcode_is_location_r",
                "only an incident location, elsewhere", 0.5, 0.95,
            ),
            else_level(0.1, 0.877),
        ),
    )


def address_comparison() -> Comparison:
    return Comparison(
        "address",
        "First address line (only the link command's inputs and cohort carry it)",
        (
            null_level("address"),
            # m is fixed: in the warehouse only case-system records carry an address,
            # so no training block holds enough matching pairs to learn it.
            Level("address_l = address_r", "exact", 0.6, 0.001, fix_m=True),
            # House number plus street: the number must agree, the street may
            # carry a typo or a split word ("gcrescent", "cre scent").
            Level(
                "house_number_l = house_number_r AND "
                "jaro_winkler_similarity(street_l, street_r) >= 0.88",
                "same house number, street alike", 0.12, 0.0005, fix_m=True,
            ),
            Level("jaro_winkler_similarity(address_l, address_r) >= 0.9", "similar", 0.05, 0.01,
                  fix_m=True),
            Level("ELSE", "all other", 0.23, 0.989, fix_m=True),
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
            Level(IDENTIFIER_AGREES_SQL, "an identifier agrees", 0.95, 0.00001),
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
# a house move, swapped names), so together they find the pairs any single error
# would hide. Every rule is an equi-join, so the cost grows with the size of the
# largest blocks, not with the square of the county. A date of birth shared by
# far more people than chance allows (1 January for unknown birthdays, a
# system's default date) would make one block of thousands: such "hot" dates
# block only together with the forename (``dob_block`` / ``dob_hot``, made by
# ``blocking_columns_sql``).
BLOCKING_RULES = [
    "l.dob_block = r.dob_block AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
    "l.dob_block = r.dob_block AND substr(l.last_name, 1, 2) = substr(r.last_name, 1, 2)",
    "l.dob_block = r.dob_block AND substr(l.first_name, 1, 1) = substr(r.last_name, 1, 1)",
    "l.dob = r.dob AND l.postcode = r.postcode",
    "l.dob_hot = r.dob_hot AND l.first_name = r.first_name "
    "AND substr(l.last_name, 1, 1) = substr(r.last_name, 1, 1)",
    "l.first_name = r.first_name AND l.last_name = r.last_name AND year(l.dob) = year(r.dob)",
    "l.first_name = r.first_name AND l.last_name = r.last_name "
    "AND month(l.dob) = month(r.dob) AND day(l.dob) = day(r.dob)",
    "l.first_name = r.last_name AND l.last_name = r.first_name",
    "l.address = r.address",
    # A postcode mistyped or out of date and no DOB to block on: the same street
    # and forename (``street`` is the address without its house number).
    "l.street = r.street AND l.first_name = r.first_name",
    "l.house_number = r.house_number AND l.last_name_sdx = r.last_name_sdx",
    "l.upn = r.upn",
    "l.nhs_number = r.nhs_number",
    "l.ni_number = r.ni_number",
]
# Rules over list columns, exploded: every postcode a person is known at (address
# history, incident locations), so a record with no DOB still meets the records of
# the people who live where it was seen; and every formal name a forename can
# stand for (BILL and WILLIAM meet through WILLIAM).
EXPLODING_BLOCKING_RULES = [
    ("l.postcodes = r.postcodes AND l.last_name = r.last_name", ["postcodes"]),
    ("l.postcodes = r.postcodes AND substr(l.first_name, 1, 2) = substr(r.first_name, 1, 2)",
     ["postcodes"]),
    ("l.first_name_groups = r.first_name_groups AND l.last_name = r.last_name "
     "AND year(l.dob) = year(r.dob)", ["first_name_groups"]),
    # Names swapped and one of them mistyped or replaced: one name in the other's
    # field, at a place the person is known at (both directions: a dedupe sees
    # each pair once).
    ("l.postcodes = r.postcodes AND l.first_name = r.last_name", ["postcodes"]),
    ("l.postcodes = r.postcodes AND l.last_name = r.first_name", ["postcodes"]),
]
BLOCKING_COLUMNS = ["dob_block", "dob_hot"]
# A date is "hot" when more records carry it than this many times the average.
HOT_DOB_FACTOR = 20
HOT_DOB_MIN = 50


def blocking_columns_sql(table: str) -> str:
    """``table`` plus the ``dob_block`` / ``dob_hot`` columns the blocking rules use."""
    return f"""WITH f AS (
            SELECT dob, count(*) AS n FROM {table} WHERE dob IS NOT NULL GROUP BY dob
        ), cap AS (
            SELECT greatest({HOT_DOB_MIN}, {HOT_DOB_FACTOR} * avg(n)) AS c FROM f
        )
        SELECT t.*, CASE WHEN f.n <= cap.c THEN t.dob END AS dob_block,
               CASE WHEN f.n > cap.c THEN t.dob END AS dob_hot
        FROM {table} t LEFT JOIN f USING (dob) CROSS JOIN cap"""


def blocking_rules_settings() -> list[dict[str, Any]]:
    """The blocking rules as Splink settings entries (exploding ones last)."""
    rules: list[dict[str, Any]] = [
        {"blocking_rule": r, "sql_dialect": "duckdb"} for r in BLOCKING_RULES
    ]
    rules += [
        {"blocking_rule": r, "sql_dialect": "duckdb", "arrays_to_explode": cols}
        for r, cols in EXPLODING_BLOCKING_RULES
    ]
    return rules


def person_settings(
    link_type: str = "dedupe_only", probability_two_random_records_match: float = 1e-5
) -> dict[str, Any]:
    """Splink settings dict of the person model (untrained starting values)."""
    return {
        "link_type": link_type,
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": probability_two_random_records_match,
        "comparisons": [c.as_dict() for c in person_comparisons()],
        "blocking_rules_to_generate_predictions": blocking_rules_settings(),
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": False,
        # the guards' forename test reads it (``RARE_TYPO_SQL``)
        "additional_columns_to_retain": ["first_name_seen"],
        "max_iterations": 20,
        "em_convergence": 0.0001,
    }
