"""Build docs/outcome_rules.md from the plan files (rules/<plan>.yaml).

    python -m rules.docs            # rewrite docs/outcome_rules.md
    python -m rules.docs --check    # exit 1 if the committed doc is stale
    python -m rules.docs --stdout   # print the doc

The YAML is the source of truth; the doc is never edited by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from famlink.contract import PLANS

from .engine import describe, load_plan
from .models import (
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

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "outcome_rules.md"

HEAD = """\
# Outcome rules

Each plan's outcome lines as encoded in `rules/<plan>.yaml` (generated from those files; \
the YAML is the source of truth).
Every line that applies to an indicator is an alternative for it ("demonstration of only \
one is required"); `marts.problem_status` collapses them.
Rule kinds: `count_reduction`/`count_zero` (events per window vs the pre-attachment rate), \
`attendance_threshold` (latest consecutive terms after attachment),
`episode_closed_no_rereferral` (social care), `evidence_present` (practitioner evidence, \
with duration/completion), `family_star_threshold`,
`score_reduction` (YOT substance risk), `continuous_employment` (the plan's CE routes), \
and `all_of`/`any_of` over component rules.
An `attendance_threshold` line needs every child in scope to pass over the window, and the \
identified child (for a person-level indicator) to be one of them: siblings attending do not \
stand in for a child with no attendance rows. Each child is judged on the terms of the \
window in which they are of school age, from the school year they start reception (the \
September after their fourth birthday) to the one they finish year 11 (every term without a \
DOB): a sibling who started school, or left after year 11, during the window is not failed \
for the terms outside it ("school age children").
Statuses: achieved (achieved_on = first day of the final spell in which the outcome held \
and was sustained, <= as_of), not_yet_sustained, not_achieved, insufficient_data (the \
extract the line needs has never been delivered, or no attendance rows for the child).
Practitioner evidence (`evidence_present`) counts only if recorded on or after attachment \
and if its `outcome_code` names the line (or one containing it) or the indicator, or, with \
no outcome_code of the plan, if its kind or the service or programme its domain names maps \
to the indicator or line in `rules/evidence_vocabulary.yaml` (matched without regard to \
case, spacing and punctuation; Family Star domains by number or name); rows that match \
nothing are listed in `marts.unmatched_evidence`. A completed programme shows the \
outcome from its end_date (completion); other rows from their start_date, standing for \
`min_duration_weeks` (an engagement that ended sooner does not count; a professional \
statement or Family Star reading whose end_date is on or before its start_date is a point \
in time, read as not ended); `current=True` \
means the status (e.g. EET) must still hold at the as-of date (not ended, and not \
followed by a later status of the same kind that is not accepted, e.g. NEET).
A `count_reduction` line with no events before attachment is not achieved \
(`zero_baseline=not_achieved`): a reduction cannot be shown from nothing; `count_zero` \
lines need zero after. An outcome that rests on the absence of events (`count_zero`, \
`count_reduction`'s after window, `episode_closed_no_rereferral`) is insufficient_data \
when a monthly extract that would show them was not delivered for a month of the window \
judged (up to the as-of month); its detail names the missing delivery.
A line with `person_age` applies only to a problem whose person is that age at the as-of \
date (not_achieved otherwise).
"""


def _cell(text: str | None) -> str:
    """One markdown table cell: whitespace folded, pipes escaped."""
    return " ".join((text or "").split()).replace("|", "\\|")


def _evidence(rule: Rule) -> str:
    e = rule.evidence
    if e is None:
        return ""
    if e.measure:
        return f"{e.extract}: {e.measure}"
    if e.practitioner_kinds:
        return f"{e.extract} ({', '.join(e.practitioner_kinds)})"
    return e.extract


def plan_words(rule: Rule) -> str:
    """The plan's own words for a line, then the reading chosen (the doc and the audit pack)."""
    words = " ".join(rule.text.split())
    if rule.reading:
        words += " — reading: " + " ".join(rule.reading.split())
    return words


MEASURE_WORDS = {
    "proven_offences": "proven offences", "yot_offences": "YOT offences",
    "adult_offences": "charged or cautioned adult offences", "asb_incidents": "ASB incidents",
    "domestic_incidents": "domestic incidents", "police_callouts": "police call-outs",
    "missing_episodes": "missing episodes", "sc_referrals": "social care referrals",
}
SCOPE_WORDS = {"family": "the family", "person": "the person with the problem",
               "children": "the family's children", "adults": "the family's adults"}


def words_list(items: list[str], last: str = "and") -> str:
    """``['a', 'b', 'c']`` -> ``'a, b and c'``."""
    items = [i for i in items if i]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def measure_words(measures: list[str]) -> str:
    """Event measures in plain words, joined with "or" (any one of them counts)."""
    return words_list([MEASURE_WORDS.get(m, m.replace("_", " ")) for m in measures], "or")


def _count_words(rule: CountRule) -> str:
    what = measure_words(rule.measures)
    window = (f"the {rule.after_months} months to the as-of date (wholly after attachment)"
              if rule.after_months else
              f"the time since attachment (at least {rule.sustain_months} months)")
    if rule.kind == "count_zero":
        cap = "no" if not rule.max_after else f"at most {rule.max_after}"
        text = f"{cap} {what} in {window}"
    else:
        below = "strictly below" if rule.strict else "below"
        text = (f"{what} per month in {window} at least {rule.min_reduction:.0%} {below} the "
                f"rate in the {rule.before_months} months before attachment")
        if rule.gravity_not_increased:
            text += ", the highest gravity no higher than before"
    if rule.person_age != "any":
        text += f" (only while the person is {rule.person_age.replace('_', ' ')})"
    return text + f", counting {SCOPE_WORDS[rule.scope]}"


def how_judged(rule: Rule) -> str:
    """What a rule checks, in plain words, from its parameters in the rule file."""
    if isinstance(rule, CountRule):
        return _count_words(rule)
    if isinstance(rule, AttendanceRule):
        text = (f"{rule.basis} attendance {'above' if rule.strictly_above else 'at least'} "
                f"{rule.min_attendance:.0%} in each of the latest {rule.terms} consecutive terms "
                f"after attachment")
        if rule.no_permanent:
            text += ", no permanent exclusion"
        if rule.max_suspensions is not None:
            text += f", at most {rule.max_suspensions} suspensions"
        return text
    if isinstance(rule, EpisodeRule):
        parts = []
        if rule.closed_types:
            closed = [t.replace("_", " ") for t in rule.closed_types]
            parts.append(f"{words_list(closed, 'or')} closed")
        bad = [t.replace("_", " ") for t in (*rule.rereferral_types, *rule.escalation_types)]
        if bad:
            parts.append(f"no new {words_list(bad, 'or')} after attachment")
        return (f"social care: {' and '.join(parts) or 'episodes judged'}, held for "
                f"{rule.sustain_months} months")
    if isinstance(rule, EvidenceRule):
        kinds = [k.replace("_", " ") for k in rule.kinds]
        text = (f"practitioner evidence ({words_list(kinds, 'or')}) recorded on or after "
                "attachment")
        if rule.domains:
            text += f" naming {words_list(rule.domains, 'or')}"
        if rule.require_completed:
            text += ", completed"
        if rule.min_duration_weeks:
            text += f", standing {rule.min_duration_weeks} weeks"
        if rule.sustain_months:
            text += f", held {rule.sustain_months} months"
        if rule.current:
            text += ", still current at the as-of date"
        return text
    if isinstance(rule, FamilyStarRule):
        n = rule.min_domains or len(rule.star_domains)
        return (f"Family Star Plus readings at {rule.min_score} or above on {n} of domains "
                f"{', '.join(str(d) for d in rule.star_domains)}, held "
                f"{rule.sustain_months} months")
    if isinstance(rule, ScoreRule):
        return "the YOT drug and alcohol risk score lower after attachment than before"
    if isinstance(rule, EmploymentRule):
        return "continuous employment by one of the plan's routes (see continuous employment)"
    if isinstance(rule, CompositeRule):
        return "any one of the parts below" if rule.kind == "any_of" else "all the parts below"
    return rule.kind


def rule_tree(plan: Plan, rule_id: str, depth: int = 0) -> list[tuple[int, Rule]]:
    """A line and, depth-first, every part it is made of (an any_of/all_of tree)."""
    rule = plan.rule(rule_id)
    out = [(depth, rule)]
    if isinstance(rule, CompositeRule):
        for part in rule.parts:
            out += rule_tree(plan, part, depth + 1)
    return out


def plan_section(name: str) -> list[str]:
    """The doc's section for one plan: its outcome lines, then its CE routes."""
    plan = load_plan(name)
    out = [f"## {name}", "",
           "| line | indicators | rule (measure, parameters) | evidence | reading |",
           "|---|---|---|---|---|"]
    for r in plan.outcome_lines():
        inds = ", ".join(r.applies_to)
        if r.interchangeable:
            inds += f" (interchangeable: {', '.join(r.interchangeable)})"
        rule = describe(r)
        if isinstance(r, CompositeRule):
            rule += " — parts: " + "; ".join(describe(plan.rule(p)) for p in r.parts)
        out.append(f"| {r.id} | {inds} | {_cell(rule)} | {_cell(_evidence(r))} "
                   f"| {_cell(r.reading)} |")
    out += ["", f"Which lines can achieve each indicator ({name}), and the plan's words "
            "that allow it:", "",
            "| indicator | line | how it applies | the plan's words |", "|---|---|---|---|"]
    for code, what in plan.indicators.items():
        for rid in plan.lines_for(code):
            r = plan.rule(rid)
            how = ("applies_to" if code in r.applies_to else "interchangeable with " + ", ".join(
                o.id for o in plan.outcome_lines()
                if code in o.applies_to and rid in o.interchangeable))
            words = plan_words(r)
            out.append(f"| {code} ({_cell(what)}) | {rid} | {how} | {_cell(words)} |")
    ce = plan.ce
    out += ["", f"Continuous employment ({name}): {' '.join(ce.text.split())}", ""]
    for rt in ce.routes:
        frm = ", ".join(rt.from_benefits)
        if rt.from_uc_regimes:
            frm += f" ({', '.join(rt.from_uc_regimes)})"
        to = f" to {', '.join(rt.to_uc_regimes)}" if rt.to_uc_regimes else ""
        within = f" within {rt.window_weeks}" if rt.window_weeks else ""
        out.append(f"- `{rt.id}`: {rt.trigger} from {frm}{to}; {rt.qualifying} for "
                   f"{rt.min_weeks} weeks{within}")
    if ce.reading:
        out += ["", f"Reading: {' '.join(ce.reading.split())}"]
    return out + ["", ""]


def build() -> str:
    """The whole doc, as text."""
    out = [HEAD.rstrip("\n"), ""]
    for name in PLANS:
        out += plan_section(name)
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the doc is stale")
    parser.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = parser.parse_args(argv)
    text = build()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
        if current != text:
            print(f"{DOC_PATH} is stale: run python -m rules.docs", file=sys.stderr)
            return 1
        return 0
    DOC_PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
