"""Dates as proleptic ordinals (ints), months, school terms and delivery schedules.

Working in ordinals keeps the population in numpy arrays and makes date maths
exact and deterministic.
"""

from __future__ import annotations

from datetime import date, timedelta

TERMS = ("AUT", "SPR", "SUM")
# (month, day) of start and end of each term, by term position
_TERM_BOUNDS = {0: ((9, 4), (12, 20)), 1: ((1, 6), (3, 28)), 2: ((4, 15), (7, 22))}
_TERM_SESSIONS = (140, 118, 128)


def o(d: date) -> int:
    """Date to ordinal."""
    return d.toordinal()


def d(ordinal: int) -> date:
    """Ordinal to date."""
    return date.fromordinal(int(ordinal))


def month_start(year: int, month: int, offset: int) -> date:
    """First day of the month `offset` months after year-month."""
    idx = year * 12 + (month - 1) + offset
    return date(idx // 12, idx % 12 + 1, 1)


def month_end(first: date) -> date:
    """Last day of first's month."""
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def add_months(day: int, months: int) -> int:
    """Ordinal plus whole months (day clamped to 28)."""
    dd = d(day)
    first = month_start(dd.year, dd.month, months)
    return o(first.replace(day=min(dd.day, 28)))


# --- school terms: term index t = 3 * academic_start_year + position -------


def term_year(t: int) -> int:
    """Academic year (start year) of term t."""
    return t // 3


def term_pos(t: int) -> int:
    """0 AUT, 1 SPR, 2 SUM."""
    return t % 3


def term_start(t: int) -> int:
    """First day of term t."""
    y, p = t // 3, t % 3
    (m, dd), _ = _TERM_BOUNDS[p]
    return o(date(y + (p > 0), m, dd))


def term_end(t: int) -> int:
    """Last day of term t."""
    y, p = t // 3, t % 3
    _, (m, dd) = _TERM_BOUNDS[p]
    return o(date(y + (p > 0), m, dd))


def term_sessions(t: int) -> int:
    """Possible half-day sessions in term t (varies a little by year)."""
    return _TERM_SESSIONS[t % 3] + ((t // 3) % 3) * 2 - 2


def academic_year_label(y: int) -> str:
    """2023 -> '2023/24'."""
    return f"{y}/{(y + 1) % 100:02d}"


def term_of(day: int) -> int:
    """Term index containing or following ordinal day."""
    dd = d(day)
    y = dd.year if dd.month >= 9 else dd.year - 1
    for t in range(3 * y, 3 * y + 4):
        if day <= term_end(t):
            return t
    return 3 * y + 3


def last_ended_term(day: int) -> int:
    """Latest term whose end is before ordinal day."""
    t = term_of(day)
    while term_end(t) >= day:
        t -= 1
    return t


def age_on(dob: int, day: int) -> int:
    """Whole years of age on ordinal day."""
    b, x = d(dob), d(day)
    return x.year - b.year - ((x.month, x.day) < (b.month, b.day))
