"""Planting each family-problem's data and its outcome trajectory.

For every problem the family shows data consistent with it at attachment
(offences in the year before, poor attendance in the three terms before, open
social care episodes, benefit spells...), then one trajectory:

- improving: a clear change on change_on, far past any plan's threshold and
  sustained longer than any plan's sustainment period by the end of the data;
- not_improving: the problem clearly continues or recurs from change_on;
- too_early: a clear change, but so recent that no plan's sustainment period
  has elapsed by the end of the data.

Kinds (the keys of KIND_PEOPLE in cohort.py) are what indicator_kinds.yaml maps
each plan's indicator codes to.
"""

from __future__ import annotations

import random

from .calendar import age_on, term_end, term_of, term_start
from .cohort import (
    KIND_PEOPLE,
    Family,
    Planted,
    Problem,
    eligible_people,
    headline_plan,
    indicator_kinds,
)
from .judge import judge_counts
from .people import ROLE_CHILD, County

EDU_KINDS = {"persistent_absence", "suspensions", "permanent_exclusion", "alternative_provision",
             "not_in_school", "education_nominated"}
EMP_KINDS = {"out_of_work", "uc_conditions"}
# kinds whose outcome is measured by the person's own offending
OFFENDING_KINDS = {"adult_offending", "offender_supervision", "youth_offending", "asb",
                   "crime_nominated"}
# kinds that plant the identified child's attendance
ATT_KINDS = EDU_KINDS | {"young_carer"}
KINDS = sorted(KIND_PEOPLE)
STAR_DOMAINS = ("Physical health", "Your well-being", "Meeting emotional needs",
                "Keeping your children safe", "Social networks", "Education and learning",
                "Boundaries and behaviour", "Family routine", "Home and money", "Progress to work")
OFFENCES = ("Theft and handling", "Violence against the person", "Criminal damage",
            "Public order", "Drugs", "Burglary", "Robbery", "Motoring offences")
DISPOSALS = ("caution", "conditional_caution", "referral_order", "youth_rehabilitation_order",
             "custody", "other")
_HEADLINE_WEIGHT = {"1": 1.0, "2": 1.0, "3": 1.2, "4": 1.2, "5": 0.9, "6": 1.0, "7": 0.3}
WEEK = 7
# Days between recurrences of a continuing problem: short enough that any
# window a plan counts over (3 months or more) holds at least one event.
RECUR_GAP = (25, 70)
# Absence rate of a child whose attendance is a problem: high enough that any 3
# terms of which at most one is good (a too_early change) average below 88%
# attendance, clearly failing every plan's 90% threshold.
BAD_ABSENCE = (0.18, 0.26)
# Family Star Plus domains each kind's own readings are taken on (the family has
# one reading per domain and date: see Planner.star).
HELP_KINDS = {"early_help", "family_early_help", "child_in_need", "repeat_assessment",
              "child_protection", "looked_after"}
STAR_OWNERS = {
    "crime_nominated": ("Boundaries and behaviour",),
    "area_demand": ("Social networks",),
    "children_nominated": ("Meeting emotional needs", "Keeping your children safe"),
    "homeless": ("Home and money",),
    "child_mental_health": ("Your well-being", "Meeting emotional needs"),
    "young_mother": ("Meeting emotional needs",),
    "family_conflict": ("Family routine", "Meeting emotional needs"),
    "mental_health": ("Your well-being",),
    "substance_misuse": ("Your well-being",),
    "physical_health": ("Physical health",),
    "financial_exclusion": ("Home and money",),
    "domestic_abuse": ("Keeping your children safe",),
    "domestic_perpetrator": ("Keeping your children safe",),
    "domestic_callout": ("Keeping your children safe",),
    "child_da_perpetrator": ("Keeping your children safe",),
}


class Timeline:
    """Fixed dates of the run: data start, data end, last attendance term delivered."""

    def __init__(self, start: int, end: int, last_att_term: int) -> None:
        self.start, self.end, self.last_att_term = start, end, last_att_term


def _spread(rnd: random.Random, lo: int, hi: int, n: int) -> list[int]:
    if hi <= lo or n <= 0:
        return []
    return sorted(rnd.randint(lo, hi) for _ in range(n))


def _next_term(day: int) -> int:
    t = term_of(day)
    return t if term_start(t) >= day else t + 1


class Planner:
    """Plants one family's problems into a shared Planted store."""

    def __init__(self, c: County, plan: str, seed: int, tl: Timeline, store: Planted) -> None:
        self.c, self.plan, self.seed, self.tl, self.s = c, plan, seed, tl, store
        self.codes = indicator_kinds().get("outcome_codes", {}).get(plan, {})
        self.heads = headline_plan(plan)
        self.kinds = indicator_kinds()["plans"][plan]
        self.ce_weeks = dict(indicator_kinds().get("ce_weeks", {}).get(plan) or {})
        self.cohort_people: set[int] = set()

    # ----------------------------------------------------------- selection
    def assign(self, fam: Family) -> None:
        """Choose the family's problems, trajectories and change dates."""
        rnd = random.Random(self.seed * 1_000_033 + fam.idx * 7919 + 5)
        r = rnd.random()
        fam.klass = "good" if r < 0.55 else "bad" if r < 0.8 else "early"
        k = rnd.choices((1, 2, 3, 4, 5), (5, 34, 35, 20, 6))[0]
        heads = list(self.heads)
        order = sorted(heads, key=lambda h: rnd.random() ** (1 / _HEADLINE_WEIGHT.get(h, 1)),
                       reverse=True)
        a = fam.attached_on
        used: set[int] = set()
        for h in order:
            if len(fam.problems) >= k:
                break
            codes = list(self.heads[h])
            rnd.shuffle(codes)
            placed = False
            for code in codes:
                kinds = self.kinds[code]
                kinds = [kinds] if isinstance(kinds, str) else list(kinds)
                rnd.shuffle(kinds)
                for kind in kinds:
                    ppl = eligible_people(self.c, fam, kind, a)
                    if ppl is not None and not ppl:
                        continue
                    person = None
                    if ppl:
                        fresh = [p for p in ppl if p not in used] or ppl
                        person = rnd.choice(fresh)
                        used.add(person)
                    fam.problems.append(Problem(code, kind, person, a - rnd.randint(0, 14)))
                    placed = True
                    break
                if placed:
                    break
        for i, pr in enumerate(fam.problems):
            pr.trajectory = self._trajectory(fam, i, rnd)
            if pr.kind in EMP_KINDS and rnd.random() < 0.3:
                pr.trajectory = "improving"  # the CE route
            pr.change_on = self._change(fam, pr, rnd)
        edu = next((pr for pr in fam.problems if pr.kind in EDU_KINDS), None)
        for pr in fam.problems:
            if pr.kind == "young_carer" and edu is not None:
                # a young carer's attendance goes the way of the family's school problem
                # ("every child attends" outcomes see both children)
                pr.trajectory, pr.change_on = edu.trajectory, edu.change_on
                if edu.trajectory == "too_early":  # too recent for any plan, as other kinds
                    pr.change_on = max(fam.attached_on + 15, self.tl.end - 45)
        if fam.klass == "good" and all(p.trajectory == "improving" for p in fam.problems):
            close = a + rnd.randint(240, 330)
            fam.closed_on = close if close <= self.tl.end else None

    def _trajectory(self, fam: Family, i: int, rnd: random.Random) -> str:
        if fam.klass == "good":
            return "too_early" if rnd.random() < 0.06 else "improving"
        if fam.klass == "bad":
            if i == 0:
                return "not_improving"
            return rnd.choices(("improving", "not_improving", "too_early"), (5, 3, 2))[0]
        return "improving" if rnd.random() < 0.1 else "too_early"

    def _change(self, fam: Family, pr: Problem, rnd: random.Random) -> int:
        a, e = fam.attached_on, self.tl.end
        edu = pr.kind in EDU_KINDS
        if pr.trajectory == "improving":
            if edu:
                t = _next_term(a + 10)
                if t + 2 <= self.tl.last_att_term:
                    return term_start(t)
            else:
                c = a + rnd.randint(20, 75)
                need = 30 * WEEK + 14 if pr.kind in EMP_KINDS else 215
                if c + need <= e:
                    return c
            pr.trajectory = "too_early"
        if pr.trajectory == "too_early":
            if edu:
                t = max(self.tl.last_att_term, _next_term(a + 10))
                return term_start(t)
            return max(a + 15, e - rnd.randint(20, 75))
        if edu:
            return term_start(_next_term(a + 10))
        return min(a + rnd.randint(30, 120), e - 45)

    # ----------------------------------------------------------- planting
    def plant(self, fam: Family) -> None:
        """Plant data for every problem, plus the family's engagement evidence."""
        rnd = random.Random(self.seed * 2_000_003 + fam.idx * 6151 + 9)
        for pr in fam.problems:
            getattr(self, f"_k_{pr.kind}")(fam, pr, rnd)
        a, e = fam.attached_on, self.tl.end
        if all(p.trajectory == "improving" for p in fam.problems) or rnd.random() < 0.5:
            end = a + rnd.randint(215, 260)
            self.ev(fam, None, "service_engagement", "Family key worker", None, "", a + 3,
                    end if end <= e else None, fam.lead_worker)
        self._adult_history(fam, rnd)

    def code(self, pr: Problem) -> str:
        """practitioner_evidence.outcome_code for this problem under the plan."""
        return str(self.codes.get(pr.indicator, pr.indicator))

    def ev(self, fam: Family, p: int | None, kind: str, domain: str, score: int | None,
           code: str, start: int, end: int | None, by: str = "") -> None:
        """Record practitioner evidence (dropped if it would be after the data ends)."""
        if start > self.tl.end:
            return
        self.s.evidence.append((fam.idx, p, kind, domain, score, code, start, end,
                                by or fam.lead_worker))

    def star(self, fam: Family, pr: Problem, day: int, domains: tuple[str, ...], lo: int,
             hi: int, rnd: random.Random) -> None:
        """Family Star Plus readings on the given domains.

        The star is one assessment of the whole family: a domain that another of
        the family's problems is measured on (its owner, see star_owner) is read
        only by problems going the owner's way, so that a too_early or failing
        problem never writes a low reading into an improving problem's domain
        (or an improving one a high reading into a failing one's).
        """
        for dom in domains:
            score = rnd.randint(lo, hi)  # drawn for every domain: a stable random stream
            owner = self.star_owner(fam, dom)
            if owner is not None and owner is not pr and owner.trajectory != pr.trajectory:
                continue
            self.ev(fam, pr.person, "family_star", dom, score, self.code(pr), day, None)

    def star_owner(self, fam: Family, domain: str) -> Problem | None:
        """The problem whose outcome a Family Star domain measures in this family.

        The first problem of a kind measured on that domain (STAR_OWNERS), else the
        first children-who-need-help problem (they read 7 domains at once).
        """
        for pr in fam.problems:
            if domain in STAR_OWNERS.get(pr.kind, ()):
                return pr
        for pr in fam.problems:
            if pr.kind in HELP_KINDS and domain in STAR_DOMAINS[:7]:
                return pr
        return None

    def _windows(self, fam: Family, pr: Problem, rnd: random.Random, n_pre: tuple[int, int],
                 pre_lo: int = 330) -> list[int]:
        """Event days: before attachment, then per trajectory (none / until C / after C)."""
        a, c, e = fam.attached_on, pr.change_on, self.tl.end
        days = _spread(rnd, a - pre_lo, a - 20, rnd.randint(*n_pre))
        if pr.trajectory == "too_early":
            # the problem carries on until the change: the last event just before
            # it, and no quiet spell long enough to pass for an improvement
            day = c - rnd.randint(5, 12)
            while day >= a + 5:
                days.append(day)
                day -= rnd.randint(*RECUR_GAP)
        elif pr.trajectory == "not_improving":
            # it recurs from the change to the end of the data, never quiet for long
            day = c
            while day <= e - 3:
                days.append(day)
                day += rnd.randint(*RECUR_GAP)
        return sorted(days)

    def incident(self, day: int, category: str, fam: Family | None, h: int, at_home: bool,
                 nominals: list[tuple[int, str, str]], rnd: random.Random) -> None:
        """A planted police incident (household h's address if at_home)."""
        if day > self.tl.end:
            return
        secs = rnd.randint(0, 86_399)
        dom = "Y" if category == "DOMESTIC" else rnd.choice(("N", "N", ""))
        self.s.incidents.append({"day": day, "secs": secs, "category": category, "dom": dom,
                                 "h": h if at_home else -1, "nominals": nominals})

    # ---- crime
    def _k_youth_offending(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        assert pr.person is not None
        for day in self._windows(fam, pr, rnd, (2, 3), 300):
            pre = day < fam.attached_on
            outcome = day + rnd.randint(14, 55)
            if pre:
                outcome = min(outcome, fam.attached_on - 5)
            sub = rnd.randint(2, 3) if pre else rnd.randint(2, 4)
            self.s.offences.append((pr.person, day, outcome, rnd.choice(OFFENCES),
                                    rnd.randint(2, 6), rnd.choice(DISPOSALS[:4]), sub))

    def _k_child_da_perpetrator(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._domestic(fam, pr, rnd, perpetrator=pr.person)

    def _k_adult_offending(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        assert pr.person is not None
        for day in self._windows(fam, pr, rnd, (2, 3)):
            victim = rnd.randrange(self.c.n)
            while victim == pr.person:  # not his own victim (redrawn only then)
                victim = rnd.randrange(self.c.n)
            self.incident(day, "CRIME", fam, fam.household, rnd.random() < 0.4,
                          [(pr.person, "OFFENDER", rnd.choice(("CHARGED", "CHARGED", "CAUTIONED"))),
                           (victim, "VICTIM", "")], rnd)

    def _k_offender_supervision(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._k_adult_offending(fam, pr, rnd)
        a = fam.attached_on
        self.ev(fam, pr.person, "professional_statement", "Probation: community order", None,
                self.code(pr), a - 10, None, "Probation")
        if pr.trajectory == "improving":
            self.ev(fam, pr.person, "programme_completed", "Community order completed", None,
                    self.code(pr), a + 14, pr.change_on + 120, "Probation")

    def _k_asb(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        assert pr.person is not None
        for day in self._windows(fam, pr, rnd, (3, 5)):
            self.incident(day, "ASB", fam, fam.household, True,
                          [(pr.person, "SUSPECT", rnd.choice(("COMMUNITY_RESOLUTION", "NFA")))],
                          rnd)

    def _k_police_callouts(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        head = fam.members[0]
        for day in self._windows(fam, pr, rnd, (5, 7)):
            cat = rnd.choice(("CONCERN_FOR_WELFARE", "OTHER", "ASB"))
            self.incident(day, cat, fam, fam.household, True, [(head, "SUBJECT", "")], rnd)

    def _nominated(self, fam: Family, pr: Problem, rnd: random.Random, domain: str,
                   star: tuple[str, ...]) -> None:
        a, c = fam.attached_on, pr.change_on
        self.ev(fam, pr.person, "professional_statement", domain, None, self.code(pr), a - 5,
                None)
        if pr.trajectory == "improving":
            self.star(fam, pr, c + 60, star, 7, 9, rnd)
            self.ev(fam, pr.person, "professional_statement",
                    f"{domain}: significant and sustained improvement", None, self.code(pr),
                    c + 185, None)
        elif pr.trajectory == "too_early":
            self.star(fam, pr, c, star, 6, 7, rnd)
        else:
            self.star(fam, pr, c, star, 2, 4, rnd)

    def _k_crime_nominated(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        # a crime concern the plans measure by police call-outs to the home (e.g.
        # Thurrock 1.4): the call-outs carry the trajectory, the statements go with it
        self._k_police_callouts(fam, pr, rnd)
        self._nominated(fam, pr, rnd, "Crime concern", ("Boundaries and behaviour",))

    def _k_area_demand(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        # demand on services (e.g. Thurrock 7.3 "reduced re-referrals into MASH"):
        # referrals in the 6 months before attachment, then per trajectory
        kids = [p for p in fam.members if self.c.role[p] == ROLE_CHILD]
        p = kids[0] if kids else fam.members[0]
        for day in self._windows(fam, pr, rnd, (2, 4), 170):
            self.ep(p, "REFERRAL", day, day + 2, "CLOSED_NFA")
        self._nominated(fam, pr, rnd, "Targeted area demand", ("Social networks",))

    def _k_children_nominated(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._monitored(fam, pr, rnd)
        self._nominated(fam, pr, rnd, "Children's services concern",
                        ("Meeting emotional needs", "Keeping your children safe"))

    # ---- education
    def _school_kids(self, fam: Family) -> list[int]:
        return [p for p in fam.members if self.c.role[p] == ROLE_CHILD
                and 5 <= age_on(int(self.c.dob[p]), fam.attached_on) <= 15]

    def _edu(self, fam: Family, pr: Problem, rnd: random.Random, bad: tuple[float, float],
             unauth: float) -> int:
        """Attendance: bad in the 3 terms before and until change; per trajectory after."""
        assert pr.person is not None
        p, t0 = pr.person, _next_term(fam.attached_on + 10)
        tc = term_of(pr.change_on)
        # another problem's child keeps the attendance that problem plants for it
        others = {o.person for o in fam.problems
                  if o is not pr and o.kind in ATT_KINDS and o.person != p}
        for t in range(t0 - 4, self.tl.last_att_term + 4):
            good_after = pr.trajectory in ("improving", "too_early") and t >= tc
            if good_after:
                # every child who may be on a school roll that term (a 4-year-old who
                # starts school, a sixth former): "every child attends" outcomes see them
                for q in fam.members:
                    if self.c.role[q] == ROLE_CHILD and q not in others:
                        self.s.att[(q, t)] = (rnd.uniform(0.005, 0.045), 0.3)
            else:
                self.s.att[(p, t)] = (rnd.uniform(*bad), unauth)
        return t0

    def _k_persistent_absence(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._edu(fam, pr, rnd, (0.16, 0.28), 0.75)

    def _k_education_nominated(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        # absence well above 10%: with the one good term a too_early change can have
        # delivered, 3 terms still average clearly below 90% attendance
        self._edu(fam, pr, rnd, BAD_ABSENCE, 0.2)
        self.ev(fam, pr.person, "professional_statement", "School attendance concern", None,
                self.code(pr), fam.attached_on - 5, None, "Education welfare")

    def _exclusion_days(self, t: int, n: int, rnd: random.Random) -> list[int]:
        return sorted({rnd.randint(term_start(t) + 3, term_end(t) - 3) for _ in range(n)})

    def _k_suspensions(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        t0 = self._edu(fam, pr, rnd, BAD_ABSENCE, 0.6)
        p = pr.person
        ta = term_of(fam.attached_on)
        ta = ta if term_start(ta) < fam.attached_on else ta - 1
        days = []
        for t in (ta - 2, ta - 1, ta):
            days += self._exclusion_days(t, rnd.randint(1, 2), rnd)
        if len(days) < 3:
            days += self._exclusion_days(ta - 1, 3, rnd)
        days = [x for x in sorted(set(days)) if x < fam.attached_on]
        if pr.trajectory == "not_improving":
            for t in range(t0, self.tl.last_att_term + 1):
                days += self._exclusion_days(t, rnd.randint(1, 2), rnd)
        for x in sorted(set(days)):
            self.s.exclusions.append((p, x, "SUSPENSION", rnd.randint(4, 10)))

    def _k_permanent_exclusion(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        t0 = self._edu(fam, pr, rnd, (0.15, 0.3), 0.7)
        p = pr.person
        assert p is not None
        ta = t0 - 1
        day = self._exclusion_days(ta, 1, rnd)[0]
        if day >= fam.attached_on:
            ta -= 1
            day = self._exclusion_days(ta, 1, rnd)[0]
        for x in self._exclusion_days(ta - 1, 2, rnd):
            self.s.exclusions.append((p, x, "SUSPENSION", rnd.randint(2, 6)))
        self.s.exclusions.append((p, day, "PERMANENT", None))
        self.s.urn_move[p] = ta + 1
        if pr.trajectory == "not_improving":
            for x in self._exclusion_days(t0 + 1, 2, rnd):
                self.s.exclusions.append((p, x, "SUSPENSION", rnd.randint(4, 8)))

    def _k_alternative_provision(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._edu(fam, pr, rnd, (0.18, 0.3), 0.7)
        p, tc = pr.person, term_of(pr.change_on)
        assert p is not None
        for t in range(_next_term(fam.attached_on + 10) - 4, self.tl.last_att_term + 4):
            if pr.trajectory == "not_improving" or t < tc:
                self.s.att_phase[(p, t)] = "alternative_provision"

    def _k_not_in_school(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._edu(fam, pr, rnd, (0.2, 0.3), 0.8)
        p, tc = pr.person, term_of(pr.change_on)
        assert p is not None
        for t in range(_next_term(fam.attached_on + 10) - 6, self.tl.last_att_term + 4):
            if pr.trajectory == "not_improving" or t < tc:
                self.s.not_enrolled.add((p, t))

    # ---- children who need help
    def ep(self, p: int, typ: str, start: int, end: int | None, reason: str | None) -> None:
        """A planted social care episode (end beyond the data end means still open)."""
        if start > self.tl.end:
            return
        if end is not None and end > self.tl.end:
            end, reason = None, None
        self.s.episodes.append((p, typ, start, end, reason))

    def _help_evidence(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        a, c = fam.attached_on, pr.change_on
        doms = STAR_DOMAINS[:7]
        self.star(fam, pr, a + 7, doms, 2, 4, rnd)
        if pr.trajectory == "improving":
            self.star(fam, pr, c + 30, doms, 7, 9, rnd)
            self.star(fam, pr, c + 130, doms, 7, 10, rnd)
        elif pr.trajectory == "too_early":
            self.star(fam, pr, c, doms, 6, 8, rnd)
        else:
            self.star(fam, pr, a + 100, doms, 2, 5, rnd)

    def _early_help(self, fam: Family, pr: Problem, rnd: random.Random, kids: list[int]) -> None:
        a, c = fam.attached_on, pr.change_on
        start = a - rnd.randint(20, 120)
        for p in kids:
            if pr.trajectory == "not_improving":
                self.ep(p, "EARLY_HELP", start, c - 1, "STEPPED_UP")
                self.ep(p, "REFERRAL", c, c + 2, "STEPPED_UP")
                self.ep(p, "CIN_PLAN", c + 3, None, None)
            else:
                self.ep(p, "EARLY_HELP", start, c, "CLOSED_NFA")
        self._help_evidence(fam, pr, rnd)

    def _k_early_help(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        assert pr.person is not None
        self._early_help(fam, pr, rnd, [pr.person])

    def _k_family_early_help(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        kids = [p for p in fam.members if self.c.role[p] == ROLE_CHILD
                and age_on(int(self.c.dob[p]), fam.attached_on) <= 17]
        self._early_help(fam, pr, rnd, kids or fam.members[:1])

    def _k_child_in_need(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        p, a, c = pr.person, fam.attached_on, pr.change_on
        assert p is not None
        s = a - rnd.randint(80, 250)
        self.ep(p, "REFERRAL", s - 50, s - 45, "STEPPED_UP")
        self.ep(p, "ASSESSMENT", s - 44, s - 1, "STEPPED_UP")
        if pr.trajectory == "not_improving":
            self.ep(p, "CIN_PLAN", s, c, "STEPPED_UP")
            self.ep(p, "CP_PLAN", c + 1, None, None)
        else:
            self.ep(p, "CIN_PLAN", s, c, "STEPPED_DOWN")
            self.ep(p, "EARLY_HELP", c + 1, c + 95, "CLOSED_NFA")
        self._help_evidence(fam, pr, rnd)

    def _k_repeat_assessment(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        p, a, c = pr.person, fam.attached_on, pr.change_on
        assert p is not None
        for s in (a - rnd.randint(250, 330), a - rnd.randint(60, 150)):
            self.ep(p, "REFERRAL", s, s + 3, "STEPPED_UP")
            self.ep(p, "ASSESSMENT", s + 4, s + 40, "CLOSED_NFA")
        if pr.trajectory == "not_improving":
            self.ep(p, "REFERRAL", c, c + 3, "STEPPED_UP")
            self.ep(p, "ASSESSMENT", c + 4, c + 40, "STEPPED_UP")
            self.ep(p, "CIN_PLAN", c + 41, None, None)
        else:
            # assessed again after attachment (s17/s47) and closed with no further
            # action at the change: until then the child is not stepped down, so a
            # too_early change shows no outcome under any plan's wording
            self.ep(p, "REFERRAL", a + 2, a + 4, "STEPPED_UP")
            self.ep(p, "ASSESSMENT", a + 5, c, "CLOSED_NFA")
        self._help_evidence(fam, pr, rnd)

    def _k_child_protection(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        p, a, c = pr.person, fam.attached_on, pr.change_on
        assert p is not None
        s = a - rnd.randint(60, 300)
        self.ep(p, "ASSESSMENT", s - 30, s - 1, "STEPPED_UP")
        if pr.trajectory == "not_improving":
            self.ep(p, "CP_PLAN", s, c, "STEPPED_UP")
            self.ep(p, "LOOKED_AFTER", c + 1, None, None)
        else:
            self.ep(p, "CP_PLAN", s, c, "STEPPED_DOWN")
            self.ep(p, "EARLY_HELP", c + 1, c + 100, "CLOSED_NFA")
        self._help_evidence(fam, pr, rnd)

    def _k_looked_after(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        p, a, c = pr.person, fam.attached_on, pr.change_on
        assert p is not None
        s = a - rnd.randint(100, 400)
        if pr.trajectory == "not_improving":
            self.ep(p, "LOOKED_AFTER", s, None, None)
        else:
            self.ep(p, "LOOKED_AFTER", s, c, "RETURNED_HOME")
        self._help_evidence(fam, pr, rnd)

    def _k_missing(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        p = pr.person
        assert p is not None
        for day in self._windows(fam, pr, rnd, (4, 6), 180):
            start = day * 1440 + rnd.randint(15 * 60, 23 * 60)
            end = start + rnd.randint(180, 3 * 1440)
            self.s.missing.append((p, rnd.choice(("MISSING", "MISSING", "AWAY")), start,
                                   end if end // 1440 <= self.tl.end else None))
            if rnd.random() < 0.5:
                self.incident(day, "MISSING_PERSON", fam, fam.household, True,
                              [(p, "SUBJECT", "")], rnd)

    def _k_cse(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        p, a, c = pr.person, fam.attached_on, pr.change_on
        assert p is not None
        s = a - rnd.randint(30, 200)
        if pr.trajectory == "not_improving":
            self.ep(p, "CSE_RISK", s, None, None)
            for day in _spread(rnd, c, self.tl.end - 5, 3):
                st = day * 1440 + rnd.randint(18 * 60, 23 * 60)
                self.s.missing.append((p, "MISSING", st, st + rnd.randint(300, 2000)))
        else:
            self.ep(p, "CSE_RISK", s, c, "CLOSED_NFA")
            self.ev(fam, p, "programme_completed", "CSE support programme", None, self.code(pr),
                    a + 10, c)

    def _k_young_carer(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        p, a, c = pr.person, fam.attached_on, pr.change_on
        assert p is not None
        self.ep(p, "YOUNG_CARER", a - rnd.randint(30, 300), None, None)
        if p in self._school_kids(fam):
            # caring keeps the child off school until the change (then per trajectory)
            self._edu(fam, pr, rnd, BAD_ABSENCE, 0.5)
        if pr.trajectory != "not_improving":
            self.ev(fam, p, "young_carer_support", "Young carers service", None, self.code(pr),
                    c, None, "Young carers service")
        if pr.trajectory == "improving":
            self.ev(fam, p, "professional_statement",
                    "Young carer reports a settled and healthy home", None, self.code(pr),
                    c + 30, None, "Young carers service")

    def _k_early_years(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        p, a, c = pr.person, fam.attached_on, pr.change_on
        self.ev(fam, p, "professional_statement", "Early Years Entitlement not taken up", None,
                self.code(pr), a - 5, None, "Health visitor")
        if pr.trajectory != "not_improving":
            self.ev(fam, p, "early_years_takeup", "2 year old funded place", None, self.code(pr),
                    c, None, "Early years team")

    def _engagement(self, fam: Family, pr: Problem, rnd: random.Random, service: str,
                    star: tuple[str, ...], programme: str = "") -> None:
        a, c = fam.attached_on, pr.change_on
        code = self.code(pr)
        self.ev(fam, pr.person, "professional_statement", f"Referred to {service}", None, code,
                a - 5, None)
        if pr.trajectory == "not_improving":
            self.ev(fam, pr.person, "service_engagement", service, None, code, a + 10, a + 45)
            self.star(fam, pr, c, star, 2, 4, rnd)
            return
        self.ev(fam, pr.person, "service_engagement", service, None, code, c, None)
        if pr.trajectory == "improving":
            self.star(fam, pr, c + 60, star, 7, 9, rnd)
            self.star(fam, pr, c + 150, star, 7, 10, rnd)
            if programme:
                self.ev(fam, pr.person, "programme_completed", programme, None, code, c,
                        c + 90)
            self.ev(fam, pr.person, "professional_statement", f"{service}: issue managed", None,
                    code, c + 30, None)
        else:
            self.star(fam, pr, c + 7, star, 6, 7, rnd)

    def _monitored(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        """Identified as needing early help: monitored by it until the change, or still."""
        p, a, c = pr.person, fam.attached_on, pr.change_on
        if p is None:
            return
        self.ep(p, "EARLY_HELP", a - rnd.randint(10, 60),
                None if pr.trajectory == "not_improving" else c,
                None if pr.trajectory == "not_improving" else "CLOSED_NFA")

    def _k_child_mental_health(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._monitored(fam, pr, rnd)
        self._engagement(fam, pr, rnd, "CAMHS", ("Your well-being", "Meeting emotional needs"))

    def _k_young_mother(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._engagement(fam, pr, rnd, "Family Nurse Partnership", ("Meeting emotional needs",))

    def _k_homeless(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._nominated(fam, pr, rnd, "Temporary accommodation", ("Home and money",))

    # ---- work and money
    def _k_out_of_work(self, fam: Family, pr: Problem, rnd: random.Random,
                       uc_only: bool = False) -> None:
        p, a, c, e = pr.person, fam.attached_on, pr.change_on, self.tl.end
        assert p is not None
        ben = "UC" if uc_only else rnd.choices(("JSA", "ESA", "IS", "UC"), (25, 25, 10, 40))[0]
        regime = "INTENSIVE_WORK_SEARCH" if ben == "UC" else ""
        s = a - rnd.randint(120, 1100)
        emp = f"{rnd.randint(100, 999)}/{rnd.choice('ABCDEFGHJKLMNPRSTW')}" \
              f"{rnd.randint(1000, 99999)}"
        pay = f"{rnd.uniform(900, 2600):.2f}"
        ref = fam.person_ref[p]
        if pr.trajectory == "not_improving":
            job_end = c + rnd.randint(21, 56)
            self.s.benefits.append((p, ben, regime, s, c - 1))
            self.s.jobs.append((p, emp, c, job_end, pay))
            self.s.benefits.append((p, ben, regime, job_end + 1, None))
            self.s.employment_truth.append((fam.family_id, ref, ben, c, c, ""))
            return
        weeks = {"JSA": 26, "ESA": 13, "IS": 13}.get(ben, 13)
        if ben == "UC":
            new = "WORKING_ENOUGH" if rnd.random() < 0.6 else "LIGHT_TOUCH"
            weeks = 13 if new == "WORKING_ENOUGH" else 26
            # a plan may set its own period (Cumbria: UC claimants meet the AET for 26
            # of the last 30 weeks, whichever regime they move to)
            weeks = self.ce_weeks.get(f"UC_{new}", weeks)
            self.s.benefits.append((p, "UC", regime, s, c - 1))
            self.s.benefits.append((p, "UC", new, c, None))
            if new == "LIGHT_TOUCH":
                pay = f"{rnd.uniform(500, 900):.2f}"
        else:
            self.s.benefits.append((p, ben, regime, s, c - 1))
        self.s.jobs.append((p, emp, c, None, pay))
        q = c + weeks * WEEK
        self.s.employment_truth.append((fam.family_id, ref, ben, c, c, q if q <= e else ""))

    def _k_uc_conditions(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._k_out_of_work(fam, pr, rnd, uc_only=True)

    def _neet(self, fam: Family, pr: Problem, rnd: random.Random, at_risk: bool) -> None:
        a, c = fam.attached_on, pr.change_on
        code = self.code(pr)
        if at_risk:
            self.ev(fam, pr.person, "professional_statement", "At risk of NEET", None, code,
                    a - 5, None, "Connexions")
        else:
            self.ev(fam, pr.person, "neet_status", "NEET", None, code, a - 20, None, "Connexions")
        if pr.trajectory == "not_improving":
            # a short spell in EET (under 13 weeks: no plan's sustained placement), then NEET
            self.ev(fam, pr.person, "neet_status", "EET", None, code, a + 20,
                    min(c - 1, a + 20 + rnd.randint(20, 70)), "Connexions")
            self.ev(fam, pr.person, "neet_status", "NEET", None, code, c, None, "Connexions")
        else:
            self.ev(fam, pr.person, "neet_status", "EET", None, code, c, None, "Connexions")
            if pr.trajectory == "improving":
                self.ev(fam, pr.person, "programme_completed", "Traineeship", None, code, c,
                        c + 13 * WEEK + 7)

    def _k_neet(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._neet(fam, pr, rnd, False)

    def _k_at_risk_neet(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._neet(fam, pr, rnd, True)

    def _k_financial_exclusion(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        a, c = fam.attached_on, pr.change_on
        code = self.code(pr)
        self.ev(fam, None, "professional_statement", "Rent arrears and debt", None, code, a - 5,
                None, "Housing")
        if pr.trajectory == "not_improving":
            self.ev(fam, None, "debt_plan", "Debt management plan", None, code, a + 30, a + 50)
            self.star(fam, pr, c, ("Home and money",), 2, 3, rnd)
        else:
            self.ev(fam, None, "debt_plan", "Debt management plan", None, code, c, None,
                    "Citizens Advice")
            if pr.trajectory == "improving":
                self.star(fam, pr, c + 100, ("Home and money",), 7, 9, rnd)

    def _outsider(self, rnd: random.Random) -> int:
        """A resident who is in no cohort family (DWP's false matches are drawn alike)."""
        while True:
            p = rnd.randrange(self.c.n)
            if p not in self.cohort_people:
                return p

    # ---- domestic abuse and relationships
    def _domestic(self, fam: Family, pr: Problem, rnd: random.Random,
                  victim: int | None = None, perpetrator: int | None = None) -> None:
        adults = [p for p in fam.members if self.c.role[p] != ROLE_CHILD]
        if victim is None:
            # never the perpetrator: another adult of the family, a woman first; with none
            # (a lone parent planted as the perpetrator) an outsider, as a perpetrator is
            # for a family with no man
            others = [p for p in adults if p != perpetrator]
            fem = [p for p in others if self.c.sex[p] == 1]
            victim = fem[0] if fem else others[0] if others else self._outsider(rnd)
        if perpetrator is None:
            # not an adult whose own offending is another problem going another way:
            # his charged/cautioned domestic incidents would be (re)offending too
            offenders = {o.person for o in fam.problems if o is not pr
                         and o.kind in OFFENDING_KINDS and o.trajectory != pr.trajectory}
            men = [p for p in adults if p != victim and self.c.sex[p] == 0
                   and p not in offenders]
            # with no man in the family, an outsider: never a member of another cohort
            # family, whose own domestic-abuse outcome his incidents would then be
            perpetrator = men[0] if men else self._outsider(rnd)
        for day in self._windows(fam, pr, rnd, (2, 4)):
            self.incident(day, "DOMESTIC", fam, fam.household, True,
                          [(victim, "VICTIM", ""),
                           (perpetrator, "SUSPECT", rnd.choice(("CHARGED", "NFA", "CAUTIONED")))],
                          rnd)
        a, c = fam.attached_on, pr.change_on
        code = self.code(pr)
        # an outsider victim's own support is not on the family's record (nor is an
        # outsider perpetrator's programme)
        helped = victim in fam.members
        if pr.trajectory == "improving":
            if helped:
                self.ev(fam, victim, "service_engagement", "IDVA", None, code, a + 10, c + 200,
                        "IDVA")
                self.ev(fam, victim, "programme_completed", "Freedom Programme", None, code,
                        a + 14, c + 70)
            if perpetrator in fam.members:
                self.ev(fam, perpetrator, "programme_completed", "Building Better Relationships",
                        None, code, a + 14, c + 90)
            for day in (c + 90, c + 180):
                self.ev(fam, pr.person, "family_star", "Keeping your children safe",
                        rnd.randint(7, 9), code, day, None)
        elif pr.trajectory == "too_early":
            if helped:
                self.ev(fam, victim, "service_engagement", "IDVA", None, code, c, None, "IDVA")
        else:
            if helped:
                self.ev(fam, victim, "service_engagement", "IDVA", None, code, a + 10, a + 40,
                        "IDVA")
            self.ev(fam, pr.person, "family_star", "Keeping your children safe",
                    rnd.randint(2, 4), code, c + 20, None)

    def _k_domestic_abuse(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._domestic(fam, pr, rnd, victim=pr.person)

    def _k_domestic_perpetrator(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._domestic(fam, pr, rnd, perpetrator=pr.person)

    def _k_domestic_callout(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._domestic(fam, pr, rnd)

    def _k_family_conflict(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._engagement(fam, pr, rnd, "Family mediation",
                         ("Family routine", "Meeting emotional needs"), "Parenting programme")

    # ---- health
    def _k_mental_health(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._engagement(fam, pr, rnd, "Community mental health team", ("Your well-being",))

    def _k_substance_misuse(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._engagement(fam, pr, rnd, "Substance misuse service", ("Your well-being",),
                         "Drug and alcohol treatment programme")

    def _k_physical_health(self, fam: Family, pr: Problem, rnd: random.Random) -> None:
        self._engagement(fam, pr, rnd, "GP and health visitor", ("Physical health",))

    # ---- everyone else in the family
    def _adult_history(self, fam: Family, rnd: random.Random) -> None:
        """Old benefit spells and jobs for adults without a work problem."""
        flagged = {p.person for p in fam.problems if p.kind in EMP_KINDS}
        a = fam.attached_on
        for p in fam.members:
            if p in flagged or age_on(int(self.c.dob[p]), a) < 18:
                continue
            if rnd.random() < 0.35:
                s = a - rnd.randint(900, 2000)
                ben = rnd.choice(("JSA", "ESA", "UC"))
                reg = "INTENSIVE_WORK_SEARCH" if ben == "UC" else ""
                self.s.benefits.append((p, ben, reg, s, s + rnd.randint(40, 300)))
            if rnd.random() < 0.5:
                s = a - rnd.randint(200, 3000)
                emp = f"{rnd.randint(100, 999)}/{rnd.choice('ABCDEFGHJKLMNPRSTW')}" \
                      f"{rnd.randint(1000, 99999)}"
                self.s.jobs.append((p, emp, s, None, f"{rnd.uniform(1200, 3500):.2f}"))


def plan_cohort(c: County, fams: list[Family], plan: str, seed: int, tl: Timeline) -> Planted:
    """Assign problems and plant every family's data; DWP matching quirks too."""
    store = Planted()
    pl = Planner(c, plan, seed, tl, store)
    cohort_people = pl.cohort_people = {p for f in fams for p in f.members}
    at_change = set(indicator_kinds().get("achieved_at_change", {}).get(plan) or ())
    for fam in fams:
        pl.assign(fam)
        pl.plant(fam)
        for pr in fam.problems:
            # the plan counts this kind's change as the outcome itself (no sustainment
            # period): a too_early change that has happened is an achieved outcome
            if pr.kind in at_change and pr.trajectory == "too_early" \
                    and pr.change_on <= tl.end:
                pr.trajectory = "improving"
    # the plan's counting lines judged on every event the family shows, whichever
    # problem planted it (judge.py)
    judge_counts(c, fams, plan, tl.end, store)
    rnd = random.Random(seed * 977 + 1)
    protected = {pr.person for f in fams for pr in f.problems if pr.kind in EMP_KINDS}
    adults = [p for f in fams for p in f.members if c.role[p] != ROLE_CHILD]
    for p in adults:
        r = rnd.random()
        if r < 0.07 and p not in protected:
            store.dwp_not_found.add(p)
        elif r < 0.11:
            for _ in range(20):  # someone else of working age: DWP's false match
                other = rnd.randrange(c.n)
                if other not in cohort_people and 20 <= age_on(int(c.dob[other]), tl.start) <= 64:
                    store.dwp_wrong[p] = other
                    break
    for _p, other in sorted(store.dwp_wrong.items()):
        s = tl.start - rnd.randint(100, 600)
        ben = rnd.choice(("JSA", "ESA"))
        store.benefits.append((other, ben, "", s, s + rnd.randint(60, 400)))
        if rnd.random() < 0.5:  # a stranger's job: a false CE trap
            store.jobs.append((other, f"{rnd.randint(100, 999)}/Z{rnd.randint(1000, 99999)}",
                               tl.start + rnd.randint(0, 200), None,
                               f"{rnd.uniform(1000, 2500):.2f}"))
    return store
