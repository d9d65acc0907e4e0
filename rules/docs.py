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
from .models import CompositeRule, Rule

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
stand in for a child with no attendance rows.
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
            words = " ".join(r.text.split())
            if r.reading:
                words += " — reading: " + " ".join(r.reading.split())
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
