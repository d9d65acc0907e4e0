"""How each source mis-records identities.

A source holds a stable view of a person (it knows Katherine as "Kate", or
has her maiden name), plus per-record noise (a typo on this record only). The
stable view is seeded by (seed, source, person) so it never depends on the
order in which records are written.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from .calendar import d, o
from .people import County, nicknames
from .rand import KeyedRandom

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Profile:
    """Per-source corruption rates (stable ones per person, noise per record)."""

    nickname: float = 0.0
    middle_as_first: float = 0.0
    alt_surname: float = 0.0
    hyphen_split: float = 0.0
    strip_accents: float = 0.0
    swap: float = 0.0
    initial: float = 0.0
    dob_transpose: float = 0.0
    dob_digit: float = 0.0
    dob_missing: float = 0.0
    old_address: float = 0.0
    id_missing: float = 0.0
    typo: float = 0.0
    case: float = 0.0
    spaces: float = 0.0


PROFILES: dict[str, Profile] = {
    "cohort": Profile(nickname=0.04, middle_as_first=0.01, strip_accents=0.05, typo=0.01,
                      dob_transpose=0.005, id_missing=0.35),
    "school": Profile(nickname=0.01, strip_accents=0.2, alt_surname=0.03, hyphen_split=0.25,
                      typo=0.01, case=0.03, dob_digit=0.003, old_address=0.05),
    "yot": Profile(nickname=0.08, middle_as_first=0.02, alt_surname=0.08, hyphen_split=0.3,
                   strip_accents=0.5, swap=0.02, dob_transpose=0.02, dob_digit=0.01,
                   old_address=0.1, id_missing=0.5, typo=0.04, case=0.05, spaces=0.03),
    "police": Profile(nickname=0.12, middle_as_first=0.03, alt_surname=0.1, hyphen_split=0.4,
                      strip_accents=0.7, swap=0.04, initial=0.03, dob_transpose=0.03,
                      dob_digit=0.02, dob_missing=0.12, typo=0.06, case=0.15, spaces=0.05),
    "social_care": Profile(nickname=0.05, middle_as_first=0.02, alt_surname=0.08,
                           hyphen_split=0.2, strip_accents=0.3, swap=0.01, dob_transpose=0.015,
                           dob_digit=0.01, old_address=0.1, id_missing=0.3, typo=0.03,
                           case=0.04, spaces=0.02),
    "dwp": Profile(alt_surname=0.04, hyphen_split=0.2, strip_accents=0.6, dob_digit=0.005,
                   old_address=0.15, id_missing=0.08, typo=0.01, case=0.5),
}
_SOURCE_IDS = {name: i + 1 for i, name in enumerate(PROFILES)}


@dataclass(frozen=True)
class View:
    """A source's stable record of a person."""

    first: str
    middle: str
    last: str
    dob: int | None
    sex: str
    old_address: bool
    id_missing: bool


def strip_accents(s: str) -> str:
    """Zoë -> Zoe, as systems without Unicode support record it."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))


def typo(s: str, rnd: KeyedRandom) -> str:
    """One-character edit: substitution, deletion, insertion or adjacent swap."""
    if len(s) < 3:
        return s
    i = rnd.randrange(1, len(s) - 1)
    op = rnd.randrange(4)
    ch = rnd.choice(_LETTERS)
    if op == 0:
        return s[:i] + ch + s[i + 1:]
    if op == 1:
        return s[:i] + s[i + 1:]
    if op == 2:
        return s[:i] + ch + s[i:]
    return s[:i - 1] + s[i] + s[i - 1] + s[i + 1:]


def case_change(s: str, rnd: KeyedRandom) -> str:
    """UPPER or lower case, as some systems store names."""
    return s.upper() if rnd.random() < 0.7 else s.lower()


def _dob_transpose(day: int) -> int:
    x = d(day)
    if x.day <= 12 and x.day != x.month:
        return o(x.replace(day=x.month, month=x.day))
    return day


def _dob_digit(day: int, rnd: KeyedRandom) -> int:
    x = d(day)
    if rnd.random() < 0.5:
        dd = x.day + rnd.choice((-10, 10, -1, 1))
        if 1 <= dd <= 28:
            return o(x.replace(day=dd))
    return o(x.replace(year=x.year + rnd.choice((-1, 1)), day=min(x.day, 28)))


def stable_view(c: County, p: int, source: str, seed: int) -> View:
    """The source's long-lived version of person p."""
    prof = PROFILES[source]
    rnd = KeyedRandom(seed, _SOURCE_IDS[source], p)
    first, middle, last = c.first_name(p), c.middle_name(p), c.last_name(p)
    if rnd.random() < prof.nickname:
        nicks = nicknames().get(first)
        if nicks:
            first = rnd.choice(nicks)
    if middle and rnd.random() < prof.middle_as_first:
        first, middle = middle, ""
    if c.alt_last[p] >= 0 and rnd.random() < prof.alt_surname:
        last = c.surnames[c.alt_last[p]]
    if "-" in last and rnd.random() < prof.hyphen_split:
        parts = last.split("-")
        last = rnd.choice([parts[0], parts[-1], " ".join(parts)])
    if rnd.random() < prof.strip_accents:
        first, middle, last = strip_accents(first), strip_accents(middle), strip_accents(last)
    if rnd.random() < prof.swap:
        first, last = last, first
    if rnd.random() < prof.initial:
        first = first[0] + ("." if rnd.random() < 0.5 else "")
    dob: int | None = int(c.dob[p])
    if rnd.random() < prof.dob_transpose:
        dob = _dob_transpose(dob)
    if rnd.random() < prof.dob_digit:
        dob = _dob_digit(dob, rnd)
    if rnd.random() < prof.dob_missing:
        dob = None
    sex = "MF"[int(c.sex[p])] if rnd.random() > 0.02 else "U"
    return View(first, middle, last, dob, sex, rnd.random() < prof.old_address,
                rnd.random() < prof.id_missing)


def noisy(name: str, source: str, rnd: KeyedRandom) -> str:
    """Per-record noise on a name: typo, case change, stray spaces."""
    prof = PROFILES[source]
    if not name:
        return name
    if rnd.random() < prof.typo:
        name = typo(name, rnd)
    if rnd.random() < prof.case:
        name = case_change(name, rnd)
    if rnd.random() < prof.spaces:
        name = rnd.choice(("  ", " ")) + name + rnd.choice(("", " "))
        name = name.replace(" ", "  ", 1) if " " in name.strip() else name
    return name


def postcode_style(pc: str, rnd: KeyedRandom) -> str:
    """Postcodes as typed: 'SS17 8AA', 'ss17 8aa', 'SS178AA'."""
    r = rnd.random()
    if r < 0.1:
        return pc.replace(" ", "")
    if r < 0.15:
        return pc.lower()
    return pc
