"""The truth for outcome lines that count events, judged on every event planted.

A problem's trajectory says how its own data was planted; a plan line that
counts events ("Reduction in number of domestic abuse incidents over last 6
months", "No offences for six months" across the family) is met or not by the
counts the family actually shows, whichever of its problems planted them: a
too_early change can leave fewer incidents in the last 6 months than before
attachment by chance, and a family member charged as another problem's
domestic abuse perpetrator is an offence in the family. So for each indicator
that data/indicator_kinds.yaml ``count_lines`` declares for the plan (the
plan's own words, windows and thresholds: not famlink's rules), the truth is
judged at every month end from attachment to the end of the data:

    achieved(m) = any declared line holds at m
                  or (the plan's other lines are met by the problem's own planted
                      evidence, and its trajectory is improving)

An improving problem whose other lines its kind's evidence meets
(``planted_evidence``) keeps its trajectory: one outcome is enough. Every other
declared problem gets one row per month end in ``_truth/outcome_months.csv``
and its trajectory/change_on follow the judgement at the end of the data.
"""

from __future__ import annotations

from dataclasses import dataclass

from .calendar import age_on, d, month_end, o
from .cohort import Family, Planted, Problem, indicator_kinds
from .people import County

# what each of the plan's counted words means in planted records
OFFENCE_OUTCOMES = {"CHARGED", "CAUTIONED", "COMMUNITY_RESOLUTION"}
OFFENDER_ROLES = {"OFFENDER", "SUSPECT"}
MEASURES = {"proven_offences", "yot_offences", "adult_offences", "asb_incidents",
            "domestic_incidents", "home_callouts", "callouts", "missing_episodes",
            "sc_referrals"}


@dataclass(frozen=True)
class Event:
    """One counted event of a family: its day, the member it names (None: the home)."""

    measure: str
    day: int
    person: int | None
    gravity: int | None = None
    proven_on: int | None = None   # YOT offences: the outcome date (None: not proven)


def plus_months(day: int, months: int) -> int:
    """Ordinal plus whole calendar months, the day clamped to the month's last day."""
    x = d(day)
    idx = x.year * 12 + x.month - 1 + months
    last = month_end(x.replace(year=idx // 12, month=idx % 12 + 1, day=1))
    return o(last.replace(day=min(x.day, last.day)))


def month_ends(first: int, last: int) -> list[int]:
    """Every month end from first's month to last's month."""
    out, m = [], o(month_end(d(first)))
    while m <= last:
        out.append(m)
        m = o(month_end(d(m + 1)))
    return out


def family_events(fam: Family, store: Planted) -> list[Event]:
    """Every planted event involving the family: at its home or naming a member."""
    members = set(fam.members)
    out: list[Event] = []
    for p, day, outcome, _cat, grav, _disp, _sub in store.offences:
        if p in members:
            out.append(Event("yot_offences", day, p, grav, outcome))
    for inc in store.incidents:
        # every nominal planted is written: no planted incident names a person twice
        # (sources.police writes one per person; tests/test_generate.py checks the planting)
        named = [(p, role, res) for p, role, res in inc["nominals"] if p in members]
        home = inc["h"] == fam.household
        if not home and not named:
            continue
        who = None if home else named[0][0]
        if home:
            out.append(Event("home_callouts", inc["day"], None))
        out.append(Event("callouts", inc["day"], who))
        if inc["category"] == "ASB":
            out.append(Event("asb_incidents", inc["day"], who))
        if inc["category"] == "DOMESTIC" or inc["dom"] == "Y":
            out.append(Event("domestic_incidents", inc["day"], who))
        for p, role, res in named:
            if role in OFFENDER_ROLES and res in OFFENCE_OUTCOMES:
                out.append(Event("adult_offences", inc["day"], p))
    for p, _typ, start, _end in store.missing:
        if p in members:
            out.append(Event("missing_episodes", start // 1440, p))
    for p, typ, start, _end, _reason in store.episodes:
        if p in members and typ == "REFERRAL":
            out.append(Event("sc_referrals", start, p))
    return out


def _counted(ev: Event, measures: list[str], m: int) -> bool:
    if ev.day > m:
        return False
    if ev.measure == "yot_offences" and "proven_offences" in measures:
        return ev.proven_on is not None and ev.proven_on <= m
    return ev.measure in measures


def _in_scope(c: County, ev: Event, scope: str, pr: Problem) -> bool:
    if scope == "family":
        return True
    if scope == "person":
        return ev.person is None or ev.person == pr.person
    if ev.person is None:
        return False
    child = age_on(int(c.dob[ev.person]), ev.day) < 18
    return child if scope == "children" else not child


def line_holds(c: County, fam: Family, pr: Problem, line: dict, events: list[Event],
               m: int) -> bool:
    """Whether one declared count line is met at month end m, by the plan's words."""
    a = fam.attached_on
    after = line.get("after_months")
    first_ok = plus_months(a, after if after is not None else line.get("sustain_months", 6))
    if m < first_ok:
        return False
    age = line.get("person_age")
    if age and pr.person is not None:
        adult = age_on(int(c.dob[pr.person]), m) >= 18
        if adult != (age == "18_or_over"):
            return False
    measures = list(line["events"]) if isinstance(line["events"], list) else [line["events"]]
    evs = [e for e in events if _counted(e, measures, m) and _in_scope(c, e, line["scope"], pr)]
    now = [e for e in evs if e.day >= a and (after is None or plus_months(e.day, after) > m)]
    if line.get("none"):
        return not now
    before_m = line["before_months"]
    before = [e for e in evs if plus_months(a, -before_m) <= e.day < a]
    if not before:
        return False   # "with none before no reduction can be shown"
    if line.get("gravity_not_increased") and now:
        top = max((e.gravity or 0) for e in before)
        if max((e.gravity or 0) for e in now) > top:
            return False
    rate_now, rate_before = len(now) / after, len(before) / before_m
    if line.get("fewer"):
        return rate_now < rate_before * (1 - line.get("min_reduction", 0.0)) - 1e-9
    return rate_now <= rate_before * (1 - line["min_reduction"]) + 1e-9


def judge_counts(c: County, fams: list[Family], plan: str, end: int,
                 store: Planted) -> None:
    """Relabel count-judged problems and record their month-end truth in the store."""
    declared = (indicator_kinds().get("count_lines") or {}).get(plan) or {}
    for fam in fams:
        todo = [pr for pr in fam.problems if pr.indicator in declared]
        if not todo:
            continue
        events = family_events(fam, store)
        for pr in todo:
            spec = declared[pr.indicator]
            if spec.get("planted_evidence") and pr.trajectory == "improving":
                continue   # another of the plan's lines is met by its own evidence
            ends = month_ends(fam.attached_on, end)
            got = [any(line_holds(c, fam, pr, ln, events, m) for ln in spec["lines"])
                   for m in ends]
            for m, ok in zip(ends, got, strict=True):
                store.outcome_months.append((fam.family_id, pr.indicator, m, ok))
            final = got[-1] if got else False
            run = len(got)
            while run > 0 and got[run - 1] == final:
                run -= 1
            if final:
                pr.trajectory, pr.change_on = "improving", ends[run]
            elif pr.trajectory == "improving":
                pr.trajectory = "not_improving"
                pr.change_on = ends[run] if run < len(ends) else pr.change_on
