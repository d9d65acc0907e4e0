"""Cohort families: who is attached, when, with which problems.

Planted data for each problem lives in `Planted`, filled by trajectories.py and
merged with the background population by sources.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np
import yaml

from .calendar import add_months, age_on
from .people import ROLE_CHILD, ROLE_HEAD, ROLE_PARTNER, County

LEAD_WORKERS = ("A. Patel", "J. Morgan", "S. O'Neill", "K. Nowak", "R. Campbell", "L. Hughes",
                "M. D'Souza", "T. Fletcher", "C. Adeyemi", "H. Walsh", "Zoë Marsh", "P. Gill")


@lru_cache(maxsize=1)
def indicator_kinds() -> dict:
    """data/indicator_kinds.yaml: plans -> indicator -> kind(s), outcome_codes."""
    text = resources.files(__package__).joinpath("data").joinpath(
        "indicator_kinds.yaml").read_text("utf-8")
    return yaml.safe_load(text)


@dataclass
class Problem:
    """One indicator identified for a family at attachment, and its planted fate."""

    indicator: str
    kind: str
    person: int | None
    identified_on: int
    trajectory: str = ""
    change_on: int = 0


@dataclass
class Family:
    """A cohort family: a household attached to the programme."""

    idx: int
    family_id: str
    household: int
    members: list[int]
    attached_on: int
    lead_worker: str
    person_ref: dict[int, str]
    problems: list[Problem] = field(default_factory=list)
    closed_on: int | None = None
    klass: str = "good"


@dataclass
class Planted:
    """Every record planted for the cohort, by source (small: cohort-sized)."""

    offences: list[tuple] = field(default_factory=list)
    incidents: list[dict] = field(default_factory=list)
    att: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)
    att_phase: dict[tuple[int, int], str] = field(default_factory=dict)
    urn_move: dict[int, int] = field(default_factory=dict)
    not_enrolled: set[tuple[int, int]] = field(default_factory=set)
    exclusions: list[tuple] = field(default_factory=list)
    episodes: list[tuple] = field(default_factory=list)
    missing: list[tuple] = field(default_factory=list)
    benefits: list[tuple] = field(default_factory=list)
    jobs: list[tuple] = field(default_factory=list)
    evidence: list[tuple] = field(default_factory=list)
    employment_truth: list[tuple] = field(default_factory=list)
    dwp_not_found: set[int] = field(default_factory=set)
    dwp_wrong: dict[int, int] = field(default_factory=dict)
    # (family_id, indicator, month end, achieved): problems the truth judges on counts
    outcome_months: list[tuple] = field(default_factory=list)


def select_families(c: County, n_families: int, seed: int, start: int, months: int) -> list[Family]:
    """Pick households with parents and children and attach them over the first year."""
    rng = np.random.default_rng([seed, 202])
    hh_has_child = np.zeros(len(c.hh_start), bool)
    ages = (start - c.dob) / 365.25
    kids = (c.role == ROLE_CHILD) & (ages < 17.5)
    hh_has_child[c.hh[kids]] = True
    cand = np.flatnonzero(hh_has_child)
    weight = c.hh_size[cand].astype(float) ** 1.5
    n = min(n_families, len(cand))
    chosen = rng.choice(cand, n, replace=False, p=weight / weight.sum())
    span = max(1, min(12, months // 2))
    span_days = add_months(start, span) - start
    attach = np.sort(start + 5 + rng.integers(0, span_days - 5, n))
    rnd = random.Random(seed * 7 + 3)
    fams = []
    ref_serial = 100_000 + int(rng.integers(0, 50_000))
    for i, (h, a) in enumerate(zip(chosen, attach, strict=True)):
        members = list(c.members(int(h)))
        refs = {}
        for p in members:
            ref_serial += 1 + rnd.randrange(3)
            refs[p] = f"P{ref_serial:07d}"
        fams.append(Family(i, f"FAM{4000 + i * 3 + rnd.randrange(3):06d}", int(h), members,
                           int(a), rnd.choice(LEAD_WORKERS), refs))
    return fams


def headline_plan(plan: str) -> dict[str, list[str]]:
    """Headline digit -> the plan's indicator codes."""
    out: dict[str, list[str]] = {}
    for code in indicator_kinds()["plans"][plan]:
        out.setdefault(code[0], []).append(code)
    return out


def eligible_people(c: County, fam: Family, kind: str, day: int) -> list[int] | None:
    """People in the family who could carry this kind; None means family-level."""
    spec = KIND_PEOPLE[kind]
    if spec is None:
        return None
    lo, hi, roles = spec
    out = []
    for p in fam.members:
        a = age_on(int(c.dob[p]), day)
        if not lo <= a <= hi:
            continue
        if roles == "adult_parent" and c.role[p] not in (ROLE_HEAD, ROLE_PARTNER):
            continue
        if roles == "young_mother":
            kids = [q for q in fam.members if c.role[q] == ROLE_CHILD]
            if c.sex[p] != 1 or c.role[p] != ROLE_HEAD or not kids:
                continue
            if min(age_on(int(c.dob[p]), int(c.dob[q])) for q in kids) > 18:
                continue
        out.append(p)
    return out


# kind -> (min age, max age, role filter) at attachment, or None for family-level
KIND_PEOPLE: dict[str, tuple[int, int, str] | None] = {
    "youth_offending": (10, 16, ""),
    "child_da_perpetrator": (10, 15, ""),
    "adult_offending": (18, 70, ""),
    "offender_supervision": (18, 70, "adult_parent"),
    "asb": (10, 70, ""),
    "crime_nominated": (10, 70, ""),
    "police_callouts": None,
    "area_demand": None,
    "persistent_absence": (5, 14, ""),
    "suspensions": (7, 14, ""),
    "permanent_exclusion": (9, 14, ""),
    "alternative_provision": (9, 14, ""),
    "not_in_school": (6, 14, ""),
    "education_nominated": (5, 14, ""),
    "early_help": (0, 16, ""),
    "family_early_help": None,
    "child_in_need": (0, 16, ""),
    "repeat_assessment": (0, 16, ""),
    "child_protection": (0, 16, ""),
    "looked_after": (0, 16, ""),
    "missing": (11, 16, ""),
    "cse": (12, 16, ""),
    "young_carer": (8, 16, ""),
    "early_years": (2, 2, ""),
    "child_mental_health": (6, 17, ""),
    "children_nominated": (0, 16, ""),
    "young_mother": (16, 40, "young_mother"),
    "homeless": None,
    "out_of_work": (18, 62, ""),
    "uc_conditions": (18, 62, ""),
    "neet": (16, 18, ""),
    "at_risk_neet": (15, 16, ""),
    "financial_exclusion": None,
    "domestic_abuse": (16, 70, "adult_parent"),
    "domestic_perpetrator": (18, 70, "adult_parent"),
    "domestic_callout": None,
    "family_conflict": None,
    "mental_health": (12, 70, ""),
    "substance_misuse": (13, 70, ""),
    "physical_health": (0, 70, ""),
}
