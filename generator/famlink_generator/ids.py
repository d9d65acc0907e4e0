"""Identifier generation and validation (UPN, NHS number, NI number, UPRN).

Rules follow famlink/contract/extracts.yaml; the same functions are used by the
tests to check every written identifier.
"""

from __future__ import annotations

import re

UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
_NI_BAD_FIRST = set("DFIQUV")
_NI_BAD_SECOND = set("DFIOQUV")
_NI_BAD_PAIRS = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
_LA_CODE = "881"


def upn_check_letter(digits12: str) -> str:
    """Check letter for the 12 digits at positions 2..13 (weight = position)."""
    total = sum(int(c) * (i + 2) for i, c in enumerate(digits12))
    return UPN_LETTERS[total % 23]


def make_upn(serial: int) -> str:
    """A valid permanent UPN from a unique 9-digit serial (LA 881)."""
    digits = f"{_LA_CODE}{serial % 1_000_000_000:09d}"
    return upn_check_letter(digits) + digits


def upn_valid(value: str) -> bool:
    """True for a well-formed permanent UPN with the right check letter."""
    v = value.strip().upper()
    if not re.fullmatch(r"[A-Z]\d{12}", v):
        return False
    return upn_check_letter(v[1:]) == v[0]


def nhs_check_digit(digits9: str) -> int:
    """Modulus-11 check digit (10 means the number is not issued)."""
    total = sum(int(c) * (10 - i) for i, c in enumerate(digits9))
    chk = 11 - total % 11
    return 0 if chk == 11 else chk


def make_nhs(serial: int) -> str:
    """A valid NHS number from a unique serial; skips bases whose check would be 10."""
    base = serial % 100_000_000
    for lead in (4, 6, 7):
        digits = f"{lead}{base:08d}"
        chk = nhs_check_digit(digits)
        if chk != 10:
            return digits + str(chk)
    raise AssertionError("unreachable")  # pragma: no cover


def nhs_valid(value: str) -> bool:
    """True for 10 digits (spaces allowed) with a correct modulus-11 check digit."""
    v = value.replace(" ", "")
    if not re.fullmatch(r"\d{10}", v):
        return False
    chk = nhs_check_digit(v[:9])
    return chk != 10 and chk == int(v[9])


def _ni_prefixes() -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for a in letters:
        for b in letters:
            if a in _NI_BAD_FIRST or b in _NI_BAD_SECOND or a + b in _NI_BAD_PAIRS:
                continue
            out.append(a + b)
    return out


NI_PREFIXES = _ni_prefixes()


def make_ni(serial: int, suffix_idx: int) -> str:
    """A valid NI number from a unique serial."""
    n = serial % (len(NI_PREFIXES) * 1_000_000)
    return f"{NI_PREFIXES[n // 1_000_000]}{n % 1_000_000:06d}{'ABCD'[suffix_idx % 4]}"


def ni_valid(value: str) -> bool:
    """True for prefix (issuable) + 6 digits + A-D."""
    v = value.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{6}[A-D]", v):
        return False
    a, b = v[0], v[1]
    return a not in _NI_BAD_FIRST and b not in _NI_BAD_SECOND and v[:2] not in _NI_BAD_PAIRS


def uprn_valid(value: str) -> bool:
    """Up to 12 digits."""
    return bool(re.fullmatch(r"\d{1,12}", value.strip()))


def break_upn(upn: str) -> str:
    """Same digits, wrong check letter: a planted invalid UPN."""
    right = upn[0]
    wrong = UPN_LETTERS[(UPN_LETTERS.index(right) + 7) % 23]
    return wrong + upn[1:]


def break_nhs(nhs: str) -> str:
    """Same first nine digits, wrong check digit."""
    digits = nhs.replace(" ", "")
    return digits[:9] + str((int(digits[9]) + 3) % 10)


def break_ni(ni: str) -> str:
    """A never-issued prefix with the same digits and suffix."""
    v = ni.replace(" ", "")
    return "QQ" + v[2:] if v[0] != "Q" else "BG" + v[2:]


def format_nhs(nhs: str, style: int) -> str:
    """Write an NHS number the way sources do: plain or 3-3-4 spaced."""
    return f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}" if style == 1 else nhs


def format_ni(ni: str, style: int) -> str:
    """Plain, spaced in pairs, or lower case."""
    if style == 1:
        return f"{ni[:2]} {ni[2:4]} {ni[4:6]} {ni[6:8]} {ni[8]}"
    if style == 2:
        return ni.lower()
    return ni


POSTCODE_RE = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$")


def postcode_valid(value: str) -> bool:
    """UK postcode in any spacing and case."""
    v = re.sub(r"\s+", "", value.upper())
    return bool(POSTCODE_RE.match(v[:-3] + " " + v[-3:])) if len(v) >= 5 else False
