"""The synthetic county: residents, households and addresses as numpy arrays.

Everything is drawn from seeded generators so a seed always builds the same
county; arrays (not objects) keep 1.5 million residents in a few hundred MB.
"""

from __future__ import annotations

import bisect
import csv
import random
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from . import ids
from .calendar import o

ROLE_HEAD, ROLE_PARTNER, ROLE_CHILD, ROLE_OTHER = 0, 1, 2, 3
_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def _read_lines(name: str) -> list[str]:
    text = resources.files(__package__).joinpath("data").joinpath(name).read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


@lru_cache(maxsize=1)
def name_tables() -> tuple[list[str], int, list[str], list[str], list[tuple[str, list[str]]]]:
    """(forenames male+female, number of male names, surnames, streets, towns)."""
    male = list(dict.fromkeys(_read_lines("forenames_male.txt")))
    female = list(dict.fromkeys(_read_lines("forenames_female.txt")))
    surnames = list(dict.fromkeys(_read_lines("surnames.txt")))
    streets = _read_lines("streets.txt")
    towns = []
    for line in _read_lines("towns.csv")[1:]:
        town, districts = line.split(",")
        towns.append((town, districts.split()))
    return male + female, len(male), surnames, streets, towns


@lru_cache(maxsize=1)
def nicknames() -> dict[str, list[str]]:
    """name -> nicknames, from data/nicknames.csv."""
    out: dict[str, list[str]] = {}
    for row in csv.DictReader(_read_lines("nicknames.csv")):
        out.setdefault(row["name"], []).append(row["nickname"])
    return out


def _cum(n: int, power: float = 0.9) -> list[float]:
    """Zipf-like cumulative weights so common names repeat, as they do."""
    acc, out = 0.0, []
    for i in range(n):
        acc += 1.0 / (i + 4) ** power
        out.append(acc)
    return out


@dataclass
class County:
    """Residents (index = person id), households and addresses."""

    ref_day: int
    forenames: list[str]
    n_male_names: int
    surnames: list[str]
    streets: list[str]
    towns: list[str]
    # persons
    first: np.ndarray
    middle: np.ndarray
    last: np.ndarray
    alt_last: np.ndarray
    sex: np.ndarray
    dob: np.ndarray
    hh: np.ndarray
    role: np.ndarray
    twin: np.ndarray
    # households
    hh_start: np.ndarray
    hh_size: np.ndarray
    hh_addr: np.ndarray
    hh_prev_addr: np.ndarray
    hh_moved_on: np.ndarray
    # addresses
    a_no: np.ndarray
    a_flat: np.ndarray
    a_street: np.ndarray
    a_town: np.ndarray
    a_postcode: list[str]
    a_uprn: np.ndarray
    lookalikes: list[tuple[int, int]] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of residents."""
        return len(self.first)

    def first_name(self, p: int) -> str:
        """Legal first name."""
        return self.forenames[self.first[p]]

    def middle_name(self, p: int) -> str:
        """Middle name or ''."""
        m = self.middle[p]
        return self.forenames[m] if m >= 0 else ""

    def last_name(self, p: int) -> str:
        """Legal surname."""
        return self.surnames[self.last[p]]

    def members(self, h: int) -> range:
        """Person ids of household h."""
        s = int(self.hh_start[h])
        return range(s, s + int(self.hh_size[h]))

    def addr_at(self, h: int, day: int) -> int:
        """Address of household h on ordinal day (previous address before the move)."""
        if day < self.hh_moved_on[h] and self.hh_prev_addr[h] >= 0:
            return int(self.hh_prev_addr[h])
        return int(self.hh_addr[h])

    def address_line1(self, a: int, short: bool = False) -> str:
        """'12 High Street' or 'Flat 3, 12 High Street'."""
        street = self.streets[self.a_street[a]]
        if short:
            street = street.replace(" Street", " St").replace(" Road", " Rd")
            street = street.replace(" Avenue", " Ave").replace(" Close", " Cl")
        line = f"{self.a_no[a]} {street}"
        if self.a_flat[a]:
            line = f"Flat {self.a_flat[a]}, {line}"
        return line

    def town(self, a: int) -> str:
        """Post town of address a."""
        return self.towns[self.a_town[a]]

    def _id_tables(self) -> None:
        """Vectorised serials and check characters for every resident (computed once)."""
        p = np.arange(self.n, dtype=np.int64)
        upn = (p * 2_654_435_761 + 12_345) % 1_000_000_000
        weights = np.arange(2, 14)
        digits = np.stack([np.full(self.n, int(ch)) for ch in "881"]
                          + [(upn // 10 ** (8 - i)) % 10 for i in range(9)], axis=1)
        self._upn_serial = upn
        self._upn_check = (digits * weights).sum(axis=1) % 23
        base = (p * 2_246_822_519 + 271_828) % 100_000_000
        nhs = np.zeros(self.n, np.int64)
        todo = np.ones(self.n, bool)
        for lead in (4, 6, 7):
            num = lead * 100_000_000 + base
            dg = np.stack([(num // 10 ** (8 - i)) % 10 for i in range(9)], axis=1)
            chk = 11 - (dg * np.arange(10, 1, -1)).sum(axis=1) % 11
            chk = np.where(chk == 11, 0, chk)
            ok = todo & (chk != 10)
            nhs[ok] = num[ok] * 10 + chk[ok]
            todo &= ~ok
        self._nhs = nhs
        space = len(ids.NI_PREFIXES) * 1_000_000
        self._ni = (p * 2_654_435_761 + 777_777) % space

    def upn(self, p: int) -> str:
        """The pupil's permanent UPN (everyone born since 1998 has one)."""
        if not hasattr(self, "_upn_check"):
            self._id_tables()
        return f"{ids.UPN_LETTERS[self._upn_check[p]]}881{self._upn_serial[p]:09d}"

    def nhs(self, p: int) -> str:
        """NHS number (everyone has one)."""
        if not hasattr(self, "_nhs"):
            self._id_tables()
        return f"{self._nhs[p]:010d}"

    def ni(self, p: int) -> str:
        """NI number (issued at 16; see has_ni)."""
        if not hasattr(self, "_ni"):
            self._id_tables()
        n = int(self._ni[p])
        return f"{ids.NI_PREFIXES[n // 1_000_000]}{n % 1_000_000:06d}{'ABCD'[(p * 7 + 3) % 4]}"

    def has_upn(self, p: int) -> bool:
        """Born since 1998, so has been a pupil in the UPN era."""
        return bool(self.dob[p] >= _UPN_ERA)

    def has_ni(self, p: int, day: int) -> bool:
        """Aged 16 or more on day."""
        return bool(day - self.dob[p] >= 16 * 365.25)


_UPN_ERA = o(__import__("datetime").date(1998, 9, 1))


def build_county(n_residents: int, seed: int, ref_day: int) -> County:
    """Households of realistic composition until n_residents people exist."""
    forenames, n_male, surnames, streets, towns_raw = name_tables()
    surnames = list(surnames)
    towns = [t for t, _ in towns_raw]
    rnd = random.Random(seed * 1_000_003 + 17)
    cum_m = _cum(n_male)
    cum_f = _cum(len(forenames) - n_male)
    cum_s = _cum(len(surnames), 0.8)
    n_base_surnames = len(surnames)
    hyphen_ix: dict[str, int] = {}

    def fname(sex: int) -> int:
        if sex == 0:
            return bisect.bisect(cum_m, rnd.random() * cum_m[-1])
        return n_male + bisect.bisect(cum_f, rnd.random() * cum_f[-1])

    def sname() -> int:
        return min(bisect.bisect(cum_s, rnd.random() * cum_s[-1]), n_base_surnames - 1)

    def hyphen(a: int, b: int) -> int:
        key = f"{surnames[a]}-{surnames[b]}"
        if key not in hyphen_ix:
            hyphen_ix[key] = len(surnames)
            surnames.append(key)
        return hyphen_ix[key]

    keys = ("first", "middle", "last", "alt", "sex", "dob", "hh", "role", "twin")
    P: dict[str, list[int]] = {k: [] for k in keys}
    H: dict[str, list[int]] = {k: [] for k in ("start", "size", "moved")}

    def add(first: int, last: int, alt: int, sex: int, age_days: int, h: int, role: int,
            twin: int = -1) -> int:
        pid = len(P["first"])
        P["first"].append(first)
        P["middle"].append(fname(sex) if rnd.random() < 0.55 else -1)
        P["last"].append(last)
        P["alt"].append(alt)
        P["sex"].append(sex)
        P["dob"].append(ref_day - age_days)
        P["hh"].append(h)
        P["role"].append(role)
        P["twin"].append(twin)
        return pid

    def adult_days(lo: int, hi: int) -> int:
        return int(rnd.uniform(lo, hi) * 365.25)

    def partner_age(age: float) -> float:
        partner = age + rnd.uniform(-6, 4)
        return partner if partner >= 18 else rnd.uniform(18, 22)

    while len(P["first"]) < n_residents:
        h = len(H["start"])
        start = len(P["first"])
        r = rnd.random()
        if r < 0.26:  # single adult
            sex = rnd.random() < 0.5
            add(fname(sex), sname(), -1, sex, adult_days(18, 88), h, ROLE_HEAD)
        elif r < 0.50:  # couple, no children at home
            age = rnd.uniform(20, 85)
            s1, s2 = sname(), sname()
            married = rnd.random() < 0.65
            add(fname(0), s1, -1, 0, int(age * 365.25), h, ROLE_HEAD)
            add(fname(1), s1 if married else s2, s2 if married else -1, 1,
                int(partner_age(age) * 365.25), h, ROLE_PARTNER)
        elif r < 0.95:  # family with children: couple or lone parent, maybe another adult
            lone = rnd.random() < 0.28
            kids = rnd.choices((1, 2, 3, 4, 5), (30, 38, 20, 8, 4))[0]
            mother_age = rnd.uniform(22, 52)
            eldest = mother_age - rnd.uniform(16.5, 30)
            young_mum = rnd.random() < 0.03
            if young_mum:
                mother_age = rnd.uniform(17, 24)
                eldest = mother_age - rnd.uniform(15.8, 18.5)
            # Older children have left home, and a young mother's first child is a baby:
            # draw their ages rather than capping them, or thousands share one DOB.
            if eldest > 17.9:
                eldest = rnd.uniform(8.0, 17.9)
            elif eldest < 0.1:
                eldest = rnd.uniform(0.1, 2.0)
            s_m, s_f = sname(), sname()
            married = not lone and rnd.random() < 0.55
            mother_last = s_f if married else s_m
            mother_alt = s_m if married else -1
            mother_sex = 1
            if lone and rnd.random() < 0.12:  # lone father
                mother_sex = 0
                mother_last, mother_alt = s_f, -1
            mum = add(fname(mother_sex), mother_last, mother_alt, mother_sex,
                      int(mother_age * 365.25), h, ROLE_HEAD)
            kid_last, kid_alt = (s_f, s_m) if (not lone and rnd.random() < 0.7) else (s_m, s_f)
            if lone:
                kid_last, kid_alt = P["last"][mum], (s_f if P["last"][mum] != s_f else -1)
            if not lone:
                add(fname(0), s_f, -1, 0, int((mother_age + rnd.uniform(-3, 7)) * 365.25),
                    h, ROLE_PARTNER)
            if kid_alt == kid_last:
                kid_alt = -1
            age = eldest
            prev = -1
            for k in range(kids):
                if age < 0:
                    break
                sex = rnd.random() < 0.49
                last, alt = kid_last, kid_alt
                if alt >= 0 and rnd.random() < 0.06:
                    last, alt = hyphen(kid_last, kid_alt), kid_last
                if prev >= 0 and rnd.random() < 0.03:  # twins share a DOB
                    pid = add(fname(sex), P["last"][prev], P["alt"][prev], sex,
                              ref_day - P["dob"][prev], h, ROLE_CHILD, twin=prev)
                    P["twin"][prev] = pid
                    prev = -1
                    continue
                prev = add(fname(sex), last, alt, sex, int(age * 365.25), h, ROLE_CHILD)
                age -= rnd.uniform(1.1, 4.5)
                _ = k
            if rnd.random() < 0.12:  # grandparent or other adult
                sex = rnd.random() < 0.5
                add(fname(sex), sname(), -1, sex, adult_days(45, 80), h, ROLE_OTHER)
        else:  # shared adults
            for _ in range(rnd.choice((2, 3))):
                sex = rnd.random() < 0.5
                add(fname(sex), sname(), -1, sex, adult_days(18, 40), h, ROLE_OTHER)
        H["start"].append(start)
        H["size"].append(len(P["first"]) - start)
        H["moved"].append(ref_day - int(rnd.expovariate(1 / (6 * 365))) - 30)

    n_h = len(H["start"])
    # addresses: one per household plus a pool of previous addresses
    n_a = n_h + n_h // 4 + 1
    arng = np.random.default_rng([seed, 101])
    a_town = arng.integers(0, len(towns), n_a).astype(np.int16)
    a_street = arng.integers(0, len(streets), n_a).astype(np.int16)
    a_flat = np.where(arng.random(n_a) < 0.12, arng.integers(1, 9, n_a), 0).astype(np.int8)
    # unique house numbers within each (town, street): rank in a shuffled order
    key = a_town.astype(np.int64) * len(streets) + a_street
    order_k = np.lexsort((arng.random(n_a), key))
    sorted_key = key[order_k]
    group_start = np.r_[0, np.flatnonzero(np.diff(sorted_key)) + 1]
    starts = np.repeat(group_start, np.diff(np.r_[group_start, n_a]))
    rank = np.arange(n_a) - starts
    a_no = np.empty(n_a, np.int32)
    a_no[order_k] = rank * 2 + 1 + (arng.random(n_a) < 0.5)
    uprn_base = arng.choice(np.arange(10_000_000, 10_000_000 + n_a * 40, 3, dtype=np.int64),
                            n_a, replace=False)
    long_uprn = arng.random(n_a) < 0.5
    a_uprn = np.where(long_uprn, 100_000_000_000 + uprn_base, uprn_base)
    pc_cache: dict[tuple[int, int, int], str] = {}
    a_postcode: list[str] = []
    prnd = random.Random(seed * 31 + 5)
    for a in range(n_a):
        key = (int(a_town[a]), int(a_street[a]), int(a_no[a]) // 24)
        pc = pc_cache.get(key)
        if pc is None:
            district = prnd.choice(towns_raw[key[0]][1])
            pc = f"{district} {prnd.randint(1, 9)}{prnd.choice(_UNIT_LETTERS)}" \
                 f"{prnd.choice(_UNIT_LETTERS)}"
            pc_cache[key] = pc
        a_postcode.append(pc)
    order = arng.permutation(n_a)
    hh_addr = order[:n_h].astype(np.int32)
    pool = order[n_h:]
    has_prev = arng.random(n_h) < 0.35
    hh_prev = np.full(n_h, -1, np.int32)
    hh_prev[has_prev] = pool[arng.integers(0, len(pool), int(has_prev.sum()))]

    county = County(
        ref_day=ref_day, forenames=forenames, n_male_names=n_male, surnames=surnames,
        streets=streets, towns=towns,
        first=np.array(P["first"], np.int16), middle=np.array(P["middle"], np.int16),
        last=np.array(P["last"], np.int32), alt_last=np.array(P["alt"], np.int32),
        sex=np.array(P["sex"], np.int8), dob=np.array(P["dob"], np.int32),
        hh=np.array(P["hh"], np.int32), role=np.array(P["role"], np.int8),
        twin=np.array(P["twin"], np.int32),
        hh_start=np.array(H["start"], np.int32), hh_size=np.array(H["size"], np.int16),
        hh_addr=hh_addr, hh_prev_addr=hh_prev, hh_moved_on=np.array(H["moved"], np.int32),
        a_no=a_no, a_flat=a_flat, a_street=a_street, a_town=a_town, a_postcode=a_postcode,
        a_uprn=a_uprn,
    )
    _plant_lookalikes(county, rnd)
    return county


def _plant_lookalikes(c: County, rnd: random.Random) -> None:
    """Unrelated pairs with the same name and DOB: the strangers linkage must keep apart."""
    k = max(4, c.n // 1500)
    for _ in range(k):
        a, b = rnd.randrange(c.n), rnd.randrange(c.n)
        if c.hh[a] == c.hh[b] or c.twin[a] >= 0 or c.twin[b] >= 0:
            continue
        if abs(int(c.dob[a]) - int(c.dob[b])) > 365 * 30:
            continue
        c.first[b], c.last[b], c.dob[b], c.sex[b] = c.first[a], c.last[a], c.dob[a], c.sex[a]
        c.lookalikes.append((a, b))
