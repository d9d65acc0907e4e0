"""Every outcome line of every plan: a family that achieves it, one that misses it,
and families on each side of its threshold.

The scenarios are generated from the rule parameters in ``rules/<plan>.yaml``
(so a council editing a threshold keeps the tests meaningful): each rule kind
has a small builder that writes the hand-sized facts for one family.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from test_rules_fixtures import World, d

from famlink.contract import PLANS
from rules.engine import load_plan
from rules.models import (
    AttendanceRule,
    CompositeRule,
    CountRule,
    EmploymentRule,
    EpisodeRule,
    EvidenceRule,
    FamilyStarRule,
    Plan,
    Rule,
    ScoreRule,
)

ATTACHED = "2023-01-15"
AS_OF = "2024-09-30"
# Terms after attachment, the latest being the newest term in the data.
TERMS = [("2022/23", "SUM"), ("2023/24", "AUT"), ("2023/24", "SPR")]


def add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for dd in (day.day, 30, 29, 28):
        try:
            return date(year, month, dd)
        except ValueError:
            continue
    raise ValueError(day)


def iso(day: date) -> str:
    return day.isoformat()


def days(text: str, n: int) -> str:
    return iso(d(text) + timedelta(days=n))


class Builder:
    """Writes scenario facts for one family under one rule."""

    def __init__(self, w: World, fid: str, plan: Plan, indicator: str = "") -> None:
        self.w, self.fid, self.plan, self.indicator = w, fid, plan, indicator
        self.adult, self.child = f"{fid}-P", f"{fid}-C"

    # -------------------------------------------------------------- events
    def event(self, measure: str, when: str) -> None:
        w = self.w
        if measure in ("proven_offences", "yot_offences"):
            w.offence(self.child, when)
        elif measure == "adult_offences":
            w.incident(None, when, "CRIME", nominal=(self.adult, "OFFENDER", "CHARGED"))
        elif measure == "asb_incidents":
            w.incident(self.fid, when, "ASB")
        elif measure == "domestic_incidents":
            w.incident(self.fid, when, "DOMESTIC", domestic=True)
        elif measure == "police_callouts":
            w.incident(self.fid, when, "OTHER")
        elif measure == "missing_episodes":
            w.missing(self.child, when)
        elif measure == "sc_referrals":
            w.episode(self.child, "REFERRAL", when, when)
        else:  # pragma: no cover
            raise ValueError(measure)

    def count(self, rule: CountRule, after_n: int, before_n: int) -> None:
        m = rule.measures[0]
        for i in range(before_n):
            self.event(m, days(ATTACHED, -10 - 5 * i))
        for i in range(after_n):
            self.event(m, days(AS_OF, -5 - 3 * i))

    @staticmethod
    def allowed_after(rule: CountRule, before_n: int) -> int:
        """The most events after attachment that still achieve the rule."""
        if rule.after_months is None:
            return rule.max_after or 0
        best = -1
        for k in range(0, 50):
            rate_ok = (
                k == 0 if before_n == 0 else (
                    k / rule.after_months < before_n / rule.before_months
                    * (1 - rule.min_reduction) - 1e-9 if rule.strict else
                    k / rule.after_months <= before_n / rule.before_months
                    * (1 - rule.min_reduction) + 1e-9
                )
            )
            if rate_ok and (rule.max_after is None or k <= rule.max_after):
                best = k
        return best

    # -------------------------------------------------------------- scenarios
    def achieve(self, rule: Rule) -> None:
        w, fid = self.w, self.fid
        if isinstance(rule, CompositeRule):
            parts = rule.parts if rule.kind == "all_of" else rule.parts[:1]
            for part in parts:
                self.achieve(self.plan.rule(part))
        elif isinstance(rule, CountRule):
            self.count(rule, 0, 10)
        elif isinstance(rule, AttendanceRule):
            self.attend(0.97)
        elif isinstance(rule, EpisodeRule):
            self.episode_closed(rule, add_months(d(AS_OF), -rule.sustain_months - 2))
        elif isinstance(rule, EvidenceRule):
            self.evidence(rule, d(ATTACHED) + timedelta(days=10 + rule.min_duration_weeks * 7))
        elif isinstance(rule, FamilyStarRule):
            self.star(rule, rule.min_score, days(ATTACHED, 10))
        elif isinstance(rule, EmploymentRule):
            w.benefit(self.adult, "JSA", "2020-01-01", days(ATTACHED, 30))
            w.job(self.adult, days(ATTACHED, 31))
        elif isinstance(rule, ScoreRule):
            w.offence(self.child, days(ATTACHED, -60), substance_risk=3)
            w.offence(self.child, days(ATTACHED, 30), proven_on=None, substance_risk=1)
        else:  # pragma: no cover
            raise TypeError(rule)
        _ = fid

    def miss(self, rule: Rule) -> None:
        w = self.w
        if isinstance(rule, CompositeRule):
            for part in rule.parts:
                self.miss(self.plan.rule(part))
        elif isinstance(rule, CountRule):
            self.count(rule, 6, 2)
        elif isinstance(rule, AttendanceRule):
            self.attend(0.80)
        elif isinstance(rule, EpisodeRule):
            if rule.closed_types:
                w.episode(self.child, rule.closed_types[0], days(ATTACHED, -30))
            else:
                w.episode(self.child, rule.escalation_types[0], days(ATTACHED, 40))
        elif isinstance(rule, FamilyStarRule):
            self.star(rule, rule.min_score - 1, days(ATTACHED, 10))
        elif isinstance(rule, EmploymentRule):
            w.benefit(self.adult, "JSA", "2020-01-01")
        elif isinstance(rule, ScoreRule):
            w.offence(self.child, days(ATTACHED, -60), substance_risk=3)
            w.offence(self.child, days(ATTACHED, 30), proven_on=None, substance_risk=4)
        # EvidenceRule: no evidence at all

    def attend(self, pct: float, suspensions: int = 0) -> None:
        for year, term in TERMS:
            self.w.attendance(self.child, year, term, pct)
        for i in range(suspensions):
            self.w.exclusion(self.child, f"2023-10-{i + 2:02d}")

    def episode_closed(self, rule: EpisodeRule, closed_on: date) -> None:
        if rule.closed_types:
            self.w.episode(self.child, rule.closed_types[0], days(ATTACHED, -30), iso(closed_on))

    def evidence(self, rule: EvidenceRule, when: date, end: date | None = None) -> None:
        """Evidence for this problem's outcome showing it from ``when``.

        A completed programme (or any row where completion is required) shows
        the outcome from its completion, so it is written to end on ``when``.
        """
        kind = rule.kinds[0]
        start = when
        if (rule.require_completed or kind == "programme_completed") and end is None:
            end = when
            start = max(d(ATTACHED), when - timedelta(days=30))
            if rule.min_duration_weeks:  # completed, then stood for the duration
                end = when - timedelta(days=rule.min_duration_weeks * 7)
                start = max(d(ATTACHED), end - timedelta(days=30))
        self.w.evidence(
            self.fid, kind, iso(start), iso(end) if end else None,
            domain=rule.domains[0] if rule.domains else None, outcome_code=self.indicator,
        )

    def star(self, rule: FamilyStarRule, score: int, when: str) -> None:
        for dom in rule.star_domains[: rule.min_domains or len(rule.star_domains)]:
            self.w.evidence(self.fid, "family_star", when, domain=str(dom), score=score)


def threshold_cases(rule: Rule) -> list[tuple[str, str, object]]:
    """(case, expected status, builder action) on each side of the rule's threshold."""
    z = d(AS_OF)
    cases: list[tuple[str, str, object]] = []
    if isinstance(rule, CountRule):
        before = 10 if rule.min_reduction or rule.strict else 2
        k = Builder.allowed_after(rule, before)
        cases.append(("at", "achieved", lambda b, r=rule, k=k: b.count(r, k, before)))
        cases.append(("over", "not_achieved", lambda b, r=rule, k=k: b.count(r, k + 1, before)))
    elif isinstance(rule, AttendanceRule):
        lo = rule.min_attendance
        above = round(lo + 0.01, 2) if rule.strictly_above else lo
        below = lo if rule.strictly_above else round(lo - 0.01, 2)
        cases.append(("at", "achieved", lambda b, p=above: b.attend(p)))
        cases.append(("below", "not_achieved", lambda b, p=below: b.attend(p)))
        allowed = rule.low_baseline_max if rule.low_baseline_below else rule.max_suspensions
        if allowed is not None:
            cases.append(("susp_at", "achieved", lambda b, n=allowed: b.attend(0.97, n)))
            cases.append(("susp_over", "not_achieved", lambda b, n=allowed: b.attend(0.97, n + 1)))
    elif isinstance(rule, EpisodeRule) and rule.closed_types:
        edge = add_months(z, -rule.sustain_months)
        while add_months(edge, rule.sustain_months) > z:
            edge -= timedelta(days=1)
        while add_months(edge + timedelta(days=1), rule.sustain_months) <= z:
            edge += timedelta(days=1)  # month-end clamping: find the last qualifying day
        cases.append(("at", "achieved", lambda b, r=rule, e=edge: b.episode_closed(r, e)))
        cases.append(("early", "not_yet_sustained",
                      lambda b, r=rule, e=edge: b.episode_closed(r, e + timedelta(days=1))))
    elif isinstance(rule, EvidenceRule) and rule.min_duration_weeks and not rule.require_completed:
        start = z - timedelta(days=rule.min_duration_weeks * 7)
        cases.append(("at", "achieved", lambda b, r=rule, s=start: b.evidence(r, s)))
        cases.append(("early", "not_yet_sustained",
                      lambda b, r=rule, s=start: b.evidence(r, s + timedelta(days=1))))
    elif isinstance(rule, FamilyStarRule):
        since = add_months(z, -rule.sustain_months)
        cases.append(("at", "achieved", lambda b, r=rule, s=since: b.star(r, r.min_score, iso(s))))
        cases.append(("early", "not_yet_sustained",
                      lambda b, r=rule, s=since: b.star(r, r.min_score, days(iso(s), 1))))
    elif isinstance(rule, EmploymentRule):
        def ce(b: Builder, shift: int) -> None:
            off = z - timedelta(days=13 * 7 - 1) + timedelta(days=shift)
            b.w.benefit(b.adult, "ESA", "2020-01-01", iso(off - timedelta(days=1)))
            b.w.job(b.adult, iso(off))
        cases.append(("at", "achieved", lambda b: ce(b, 0)))
        cases.append(("early", "not_yet_sustained", lambda b: ce(b, 1)))
    return cases


def _person_for(plan: Plan, rule: Rule, b: Builder) -> str:
    """The problem's person: the adult for adult-offending and employment lines."""
    def adultish(r: Rule) -> bool:
        if isinstance(r, CompositeRule):
            return any(adultish(plan.rule(p)) for p in r.parts)
        if isinstance(r, CountRule):
            return "adult_offences" in r.measures and r.person_age == "any"
        return isinstance(r, EmploymentRule)
    return b.adult if adultish(rule) else b.child


def build(plan_name: str) -> tuple[World, list[tuple[str, str, str, str, str]]]:
    """A world with scenario families for every outcome line of the plan."""
    plan = load_plan(plan_name)
    w = World()
    expected: list[tuple[str, str, str, str, str]] = []
    for n, rule in enumerate(plan.outcome_lines()):
        indicator = rule.applies_to[0]
        scenarios: list[tuple[str, str, object]] = [
            ("ok", "achieved", lambda b, r=rule: b.achieve(r)),
            ("miss", "not_achieved", lambda b, r=rule: b.miss(r)),
        ]
        if not isinstance(rule, CompositeRule):
            scenarios += threshold_cases(rule)
        for case, status, action in scenarios:
            fid = f"F{n:02d}{case}"
            b = Builder(w, fid, plan, indicator)
            # a line for a young person now 18 or over: a child at attachment, 18 since
            young = isinstance(rule, CountRule) and rule.person_age == "18_or_over"
            w.family(fid, ATTACHED, members=(
                (b.adult, "parent_carer", "1985-03-03"),
                (b.child, "child", "2005-04-04" if young else "2010-04-04")))
            w.problem(fid, indicator, _person_for(plan, rule, b))
            action(b)  # type: ignore[operator]
            expected.append((fid, indicator, rule.id, case, status))
    return w, expected


@pytest.mark.parametrize("plan_name", PLANS)
def test_every_outcome_line_achieves_misses_and_thresholds(plan_name: str) -> None:
    w, expected = build(plan_name)
    got = w.run(plan_name, AS_OF)
    wrong = []
    for fid, ind, line, case, status in expected:
        actual = got.get((fid, ind, line), ("<missing>", None))[0]
        if status == "not_achieved" and case == "miss":
            ok = actual in ("not_achieved", "insufficient_data")
        else:
            ok = actual == status
        if not ok:
            wrong.append(f"{line} {ind} {case}: expected {status}, got {actual}")
    assert not wrong, "\n".join(wrong)
    achieved = w.con.execute(
        "SELECT count(*) FROM marts.outcomes WHERE status = 'achieved' AND achieved_on > as_of"
    ).fetchone()[0]
    assert achieved == 0


@pytest.mark.parametrize("plan_name", PLANS)
def test_rule_file_covers_every_indicator_and_line(plan_name: str) -> None:
    from famlink.contract import load_indicators

    plan = load_plan(plan_name)
    assert set(plan.indicators) == set(load_indicators()[plan_name])
    for code in plan.indicators:
        assert plan.lines_for(code), code
    for rule in plan.outcome_lines():
        assert rule.evidence is not None, f"{plan_name} {rule.id} has no evidence source"
