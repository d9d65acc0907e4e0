"""Validation of the strong identifiers the extracts carry (UPN, NHS, NI, UPRN).

An identifier that fails its check is treated as missing everywhere: a wrong
UPN that happens to equal another pupil's would make a false link, which is
worse than no link. The same rules exist twice on purpose: as Python functions
(for tests, the generator and ``famlink link``) and as DuckDB macros (for
vectorised validation at ingest); ``tests/test_identifiers.py`` checks that
both agree.
"""

from __future__ import annotations

import re

import duckdb
from stdnum.gb import nhs as nhs_stdnum
from stdnum.gb import upn as upn_stdnum

UPN_CHECK_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
_NI_BAD_FIRST = set("DFIQUV")
_NI_BAD_SECOND = set("DFIOQUV")
_NI_NEVER_ISSUED = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
_UPN_RE = re.compile(r"^[A-Z][0-9]{11}[0-9A-Z]$")
_NI_RE = re.compile(r"^[A-Z]{2}[0-9]{6}[A-D]$")


def _compact(value: str | None) -> str:
    return re.sub(r"\s+", "", value or "").upper()


def upn_check_letter(digits12: str) -> str:
    """Check letter for the 12 characters after it (positions 2..13; a temporary
    UPN's final letter counts by its place in the check alphabet), python-stdnum's."""
    return upn_stdnum.calc_check_digit(digits12)


def normalise_upn(value: str | None) -> str | None:
    """Canonical UPN, or None when it is not a valid UPN (format and check
    letter; the local-authority number is not checked against stdnum's list,
    which would refuse the test and generator numbers)."""
    upn = _compact(value)
    if not _UPN_RE.match(upn):
        return None
    if upn[-1].isalpha() and upn[-1] not in UPN_CHECK_LETTERS:
        return None
    return upn if upn[0] == upn_check_letter(upn[1:]) else None


def nhs_check_digit(first9: str) -> int | None:
    """Modulus-11 check digit (weights 10..2); None where none exists (10)."""
    for digit in range(10):
        if nhs_stdnum.checksum(first9 + str(digit)) == 0:
            return digit
    return None


def normalise_nhs_number(value: str | None) -> str | None:
    """Ten digits with a valid check digit (python-stdnum), or None."""
    nhs = re.sub(r"[\s-]+", "", value or "")
    if not re.fullmatch(r"[0-9]{10}", nhs):
        return None
    if nhs == nhs[0] * 10:
        return None
    return nhs if nhs_stdnum.is_valid(nhs) else None


def normalise_ni_number(value: str | None) -> str | None:
    """Canonical NI number (no spaces, upper case), or None when never issuable."""
    ni = _compact(value)
    if not _NI_RE.match(ni):
        return None
    if ni[0] in _NI_BAD_FIRST or ni[1] in _NI_BAD_SECOND or ni[:2] in _NI_NEVER_ISSUED:
        return None
    return ni


def normalise_uprn(value: str | None) -> str | None:
    """UPRN without leading zeros (1 to 12 digits), or None."""
    uprn = (value or "").strip()
    if not re.fullmatch(r"[0-9]{1,12}", uprn):
        return None
    stripped = uprn.lstrip("0")
    return stripped or None


# DuckDB macros with the same rules, used by the ingest's vectorised checks.
IDENTIFIER_MACROS_SQL = r"""
CREATE OR REPLACE MACRO fl_compact(v) AS upper(regexp_replace(coalesce(v, ''), '\s+', '', 'g'));

-- Written out, not a list_transform over range(2, 14): a lambda per row made the
-- UPN check cost a county's ingest most of its time (benchmarks/county.py).
CREATE OR REPLACE MACRO fl_upn_checksum(u) AS (
    (coalesce(TRY_CAST(substr(u, 2, 1) AS INTEGER), 0) * 2
        + coalesce(TRY_CAST(substr(u, 3, 1) AS INTEGER), 0) * 3
        + coalesce(TRY_CAST(substr(u, 4, 1) AS INTEGER), 0) * 4
        + coalesce(TRY_CAST(substr(u, 5, 1) AS INTEGER), 0) * 5
        + coalesce(TRY_CAST(substr(u, 6, 1) AS INTEGER), 0) * 6
        + coalesce(TRY_CAST(substr(u, 7, 1) AS INTEGER), 0) * 7
        + coalesce(TRY_CAST(substr(u, 8, 1) AS INTEGER), 0) * 8
        + coalesce(TRY_CAST(substr(u, 9, 1) AS INTEGER), 0) * 9
        + coalesce(TRY_CAST(substr(u, 10, 1) AS INTEGER), 0) * 10
        + coalesce(TRY_CAST(substr(u, 11, 1) AS INTEGER), 0) * 11
        + coalesce(TRY_CAST(substr(u, 12, 1) AS INTEGER), 0) * 12
        + CASE WHEN NOT regexp_matches(substr(u, 13, 1), '[0-9]')
               THEN (instr('ABCDEFGHJKLMNPQRTUVWXYZ', substr(u, 13, 1)) - 1) * 13
               ELSE coalesce(TRY_CAST(substr(u, 13, 1) AS INTEGER), 0) * 13 END) % 23
);

CREATE OR REPLACE MACRO fl_upn_compacted(u) AS (
    CASE WHEN regexp_full_match(u, '[A-Z][0-9]{11}[0-9ABCDEFGHJKLMNPQRTUVWXYZ]')
          AND substr(u, 1, 1) = substr('ABCDEFGHJKLMNPQRTUVWXYZ', fl_upn_checksum(u) + 1, 1)
         THEN u END
);

CREATE OR REPLACE MACRO fl_upn(v) AS fl_upn_compacted(fl_compact(v));

CREATE OR REPLACE MACRO fl_nhs_raw(v) AS regexp_replace(coalesce(v, ''), '[\s-]+', '', 'g');

CREATE OR REPLACE MACRO fl_nhs_check(n) AS (
    11 - (coalesce(TRY_CAST(substr(n, 1, 1) AS INTEGER), 0) * 10
        + coalesce(TRY_CAST(substr(n, 2, 1) AS INTEGER), 0) * 9
        + coalesce(TRY_CAST(substr(n, 3, 1) AS INTEGER), 0) * 8
        + coalesce(TRY_CAST(substr(n, 4, 1) AS INTEGER), 0) * 7
        + coalesce(TRY_CAST(substr(n, 5, 1) AS INTEGER), 0) * 6
        + coalesce(TRY_CAST(substr(n, 6, 1) AS INTEGER), 0) * 5
        + coalesce(TRY_CAST(substr(n, 7, 1) AS INTEGER), 0) * 4
        + coalesce(TRY_CAST(substr(n, 8, 1) AS INTEGER), 0) * 3
        + coalesce(TRY_CAST(substr(n, 9, 1) AS INTEGER), 0) * 2) % 11
);

CREATE OR REPLACE MACRO fl_nhs(v) AS (
    CASE WHEN regexp_full_match(fl_nhs_raw(v), '[0-9]{10}')
          AND fl_nhs_raw(v) <> repeat(substr(fl_nhs_raw(v), 1, 1), 10)
          AND fl_nhs_check(fl_nhs_raw(v)) <> 10
          AND (fl_nhs_check(fl_nhs_raw(v)) % 11) = TRY_CAST(substr(fl_nhs_raw(v), 10, 1) AS INTEGER)
         THEN fl_nhs_raw(v) END
);

CREATE OR REPLACE MACRO fl_ni(v) AS (
    CASE WHEN regexp_full_match(fl_compact(v), '[A-Z]{2}[0-9]{6}[A-D]')
          AND NOT contains('DFIQUV', substr(fl_compact(v), 1, 1))
          AND NOT contains('DFIOQUV', substr(fl_compact(v), 2, 1))
          AND substr(fl_compact(v), 1, 2) NOT IN ('BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ')
         THEN fl_compact(v) END
);

CREATE OR REPLACE MACRO fl_uprn(v) AS (
    CASE WHEN regexp_full_match(trim(coalesce(v, '')), '[0-9]{1,12}')
          AND ltrim(trim(v), '0') <> ''
         THEN ltrim(trim(v), '0') END
);
"""


def install_identifier_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Make fl_upn/fl_nhs/fl_ni/fl_uprn available on a connection."""
    con.execute(IDENTIFIER_MACROS_SQL)
