"""Typed outcome rules: what a council's plan says, as validated data.

A plan file (``rules/<plan>.yaml``) lists the plan's indicators and outcome
lines. Each outcome line has a ``kind`` (one of a small set of generic rule
kinds) whose parameters are checked here, so that a council changes a
threshold by editing YAML and a typo fails loudly, naming file and rule.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

EXTRACTS = (
    "cohort_families", "cohort_members", "cohort_addresses", "cohort_problems",
    "practitioner_evidence", "yot_offences", "police_incidents", "police_nominals",
    "school_attendance", "school_exclusions", "dwp_benefits", "dwp_employment",
    "social_care_episodes", "social_care_missing",
)
EVIDENCE_KINDS = (
    "family_star", "professional_statement", "programme_completed", "service_engagement",
    "debt_plan", "young_carer_support", "early_years_takeup", "neet_status",
)
EPISODE_TYPES = (
    "REFERRAL", "EARLY_HELP", "ASSESSMENT", "CIN_PLAN", "CP_PLAN", "LOOKED_AFTER",
    "CSE_RISK", "YOUNG_CARER",
)
UC_REGIMES = (
    "INTENSIVE_WORK_SEARCH", "LIGHT_TOUCH", "WORKING_ENOUGH", "NO_WORK_REQUIREMENTS",
    "WORK_PREPARATION", "PLANNING_FOR_WORK",
)
# Measures computed in transforms/intermediate/int_rules_events.sql, with the
# extract each one comes from.
EVENT_MEASURES = {
    "proven_offences": "yot_offences",
    "yot_offences": "yot_offences",
    "adult_offences": "police_nominals",
    "asb_incidents": "police_incidents",
    "domestic_incidents": "police_incidents",
    "police_callouts": "police_incidents",
    "missing_episodes": "social_care_missing",
    "sc_referrals": "social_care_episodes",
}

EpisodeType = Literal[
    "REFERRAL", "EARLY_HELP", "ASSESSMENT", "CIN_PLAN", "CP_PLAN", "LOOKED_AFTER",
    "CSE_RISK", "YOUNG_CARER",
]
EvidenceKind = Literal[
    "family_star", "professional_statement", "programme_completed", "service_engagement",
    "debt_plan", "young_carer_support", "early_years_takeup", "neet_status",
]
UcRegime = Literal[
    "INTENSIVE_WORK_SEARCH", "LIGHT_TOUCH", "WORKING_ENOUGH", "NO_WORK_REQUIREMENTS",
    "WORK_PREPARATION", "PLANNING_FOR_WORK",
]
Benefit = Literal["JSA", "ESA", "IS", "UC"]


class RuleFileError(ValueError):
    """A rule file that does not load: the message names the file and rule."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvidenceSource(_Strict):
    """Where the outcome is seen: an extract and measure, or practitioner evidence."""

    extract: Literal[
        "cohort_families", "cohort_members", "cohort_addresses", "cohort_problems",
        "practitioner_evidence", "yot_offences", "police_incidents", "police_nominals",
        "school_attendance", "school_exclusions", "dwp_benefits", "dwp_employment",
        "social_care_episodes", "social_care_missing",
    ]
    measure: str | None = None
    practitioner_kinds: list[EvidenceKind] = Field(default_factory=list)
    note: str | None = None


class _RuleBase(_Strict):
    id: str
    text: str = Field(description="the plan's own words for the outcome line")
    applies_to: list[str] = Field(default_factory=list, description="indicator codes")
    interchangeable: list[str] = Field(
        default_factory=list,
        description="other outcome lines that may be shown instead (only one is required)",
    )
    evidence: EvidenceSource | None = None
    reading: str | None = Field(default=None, description="the reading chosen where ambiguous")
    component: bool = Field(
        default=False, description="a part of an all_of/any_of rule, not an outcome line itself"
    )
    scope: Literal["person", "family", "children", "adults"] = "family"


class CountRule(_RuleBase):
    """Events per window: a reduction against the pre-attachment rate, or a cap.

    The after window is the ``after_months`` ending at the as-of date (it must
    lie wholly after attachment), or, when ``after_months`` is null, the whole
    time since attachment, which must be at least ``sustain_months`` long.
    """

    kind: Literal["count_reduction", "count_zero"]
    measures: list[str]
    before_months: int = Field(12, ge=1, le=36)
    after_months: int | None = Field(6, ge=1, le=36)
    sustain_months: int = Field(6, ge=0, le=36)
    min_reduction: float = Field(0.0, ge=0.0, le=1.0)
    strict: bool = Field(False, description="the after rate must be strictly lower")
    max_after: int | None = Field(None, ge=0, description="at most this many events after")
    gravity_not_increased: bool = False
    person_age: Literal["any", "under_18", "18_or_over"] = Field(
        "any", description="the line applies only when the problem's person is that age at "
        "the as-of date (Thurrock 1A: 1.1 for a child, 1.2's probation note for a young "
        "person now over 18); otherwise not_achieved",
    )
    zero_baseline: Literal["require_zero", "achieved", "not_achieved"] | None = Field(
        None,
        description="with no events before attachment: a reduction (count_reduction) cannot "
        "be shown, so not_achieved by default; a cap (count_zero) needs zero after",
    )

    @model_validator(mode="after")
    def _check(self) -> CountRule:
        unknown = [m for m in self.measures if m not in EVENT_MEASURES]
        if unknown:
            raise ValueError(f"unknown measure(s) {unknown}; known: {sorted(EVENT_MEASURES)}")
        if self.kind == "count_zero" and self.max_after is None:
            object.__setattr__(self, "max_after", 0)
        if self.zero_baseline is None:
            object.__setattr__(self, "zero_baseline",
                               "require_zero" if self.kind == "count_zero" else "not_achieved")
        if self.after_months is None and self.max_after is None:
            raise ValueError("a window since attachment (after_months: null) needs max_after")
        return self


class ScoreRule(_RuleBase):
    """An assessed score (e.g. YOT drug/alcohol risk) lower after attachment than before."""

    kind: Literal["score_reduction"]
    measure: Literal["substance_risk"] = "substance_risk"
    sustain_months: int = Field(0, ge=0, le=36)
    scope: Literal["person", "family", "children", "adults"] = "person"


class AttendanceRule(_RuleBase):
    """Attendance (and exclusions) over the latest consecutive terms after attachment."""

    kind: Literal["attendance_threshold"]
    min_attendance: float = Field(0.9, ge=0.0, le=1.0)
    basis: Literal["overall", "unauthorised"] = "overall"
    strictly_above: bool = False
    terms: int = Field(3, ge=1, le=6)
    max_suspensions: int | None = Field(None, ge=0)
    low_baseline_below: int | None = Field(
        None, ge=1, description="if the child had fewer suspensions than this before..."
    )
    low_baseline_max: int | None = Field(None, ge=0, description="...at most this many after")
    min_suspension_reduction: float | None = Field(None, ge=0.0, le=1.0)
    no_permanent: bool = True
    scope: Literal["person", "family", "children", "adults"] = "children"


class EpisodeRule(_RuleBase):
    """Social care involvement closed and no re-referral for the sustainment period."""

    kind: Literal["episode_closed_no_rereferral"]
    closed_types: list[EpisodeType]
    rereferral_types: list[EpisodeType] = Field(default_factory=list)
    escalation_types: list[EpisodeType] = Field(default_factory=list)
    bad_end_reasons: list[str] = Field(default_factory=lambda: ["STEPPED_UP"])
    sustain_months: int = Field(6, ge=0, le=36)
    if_no_episode: Literal["insufficient_data", "since_attachment", "not_achieved"] = (
        "insufficient_data"
    )
    scope: Literal["person", "family", "children", "adults"] = "children"


class EvidenceRule(_RuleBase):
    """Practitioner evidence of a kind: present, completed, or engaged for long enough."""

    kind: Literal["evidence_present"]
    kinds: list[EvidenceKind]
    domains: list[str] = Field(default_factory=list, description="domain text contains one")
    match_outcome_code: bool = True
    require_completed: bool = False
    min_duration_weeks: int = Field(0, ge=0, le=156)
    sustain_months: int = Field(0, ge=0, le=36)
    current: bool = Field(
        False, description="a status that must still hold at the as-of date (not ended)"
    )


class FamilyStarRule(_RuleBase):
    """Family Star Plus readings at or above a score, held for the sustainment period."""

    kind: Literal["family_star_threshold"]
    star_domains: list[int] = Field(default_factory=lambda: list(range(1, 11)))
    min_score: int = Field(6, ge=1, le=10)
    min_domains: int | None = Field(None, ge=1, le=10)
    sustain_months: int = Field(3, ge=0, le=36)

    @model_validator(mode="after")
    def _check(self) -> FamilyStarRule:
        if any(d < 1 or d > 10 for d in self.star_domains):
            raise ValueError("star_domains are Family Star Plus domains 1-10")
        if self.min_domains is not None and self.min_domains > len(self.star_domains):
            raise ValueError("min_domains exceeds the number of star_domains")
        return self


class EmploymentRule(_RuleBase):
    """The continuous-employment result (see ``ce``) of the person or any adult."""

    kind: Literal["continuous_employment"]
    scope: Literal["person", "family", "children", "adults"] = "adults"


class CompositeRule(_RuleBase):
    """All (or any) of other rules, e.g. "engaged AND no longer high risk"."""

    kind: Literal["all_of", "any_of"]
    parts: list[str] = Field(min_length=2)


Rule = Annotated[
    CountRule | ScoreRule | AttendanceRule | EpisodeRule | EvidenceRule | FamilyStarRule
    | EmploymentRule | CompositeRule,
    Field(discriminator="kind"),
]
RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)


class CeRoute(_Strict):
    """One continuous-employment route, e.g. off JSA into work for 26 weeks."""

    id: str
    trigger: Literal["spell_end", "regime_change"]
    from_benefits: list[Benefit]
    from_uc_regimes: list[UcRegime] = Field(default_factory=list)
    to_uc_regimes: list[UcRegime] = Field(default_factory=list)
    qualifying: Literal["employment", "uc_regime"] = "employment"
    min_weeks: int = Field(ge=1, le=104)
    window_weeks: int | None = Field(None, ge=1, le=104)
    reading: str | None = None

    @model_validator(mode="after")
    def _check(self) -> CeRoute:
        if self.window_weeks is not None and self.window_weeks < self.min_weeks:
            raise ValueError("window_weeks must be at least min_weeks")
        if self.trigger == "regime_change" and not (self.from_uc_regimes and self.to_uc_regimes):
            raise ValueError("a regime_change route needs from_uc_regimes and to_uc_regimes")
        if self.qualifying == "uc_regime" and not self.to_uc_regimes:
            raise ValueError("qualifying: uc_regime needs to_uc_regimes")
        return self


class CeSpec(_Strict):
    """Continuous employment: which spells are out of work and the routes off them."""

    text: str
    out_of_work_benefits: list[Benefit] = Field(default_factory=lambda: ["JSA", "ESA", "IS"])
    out_of_work_uc_regimes: list[UcRegime] = Field(
        default_factory=lambda: [
            "INTENSIVE_WORK_SEARCH", "NO_WORK_REQUIREMENTS", "WORK_PREPARATION",
            "PLANNING_FOR_WORK",
        ]
    )
    routes: list[CeRoute] = Field(min_length=1)
    reading: str | None = None


class Plan(_Strict):
    """A council's outcomes plan as rules."""

    plan: str
    source: str
    identification_grace_days: int = Field(92, ge=0, le=366)
    indicators: dict[str, str]
    local_problems: dict[int, str] = Field(
        default_factory=dict, description="the plan's own headline problems (Thurrock's 7)")
    rules: list[Rule]
    ce: CeSpec

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def outcome_lines(self) -> list[Rule]:
        """The plan's outcome lines (rules that are not components)."""
        return [r for r in self.rules if not r.component]

    def lines_for(self, indicator: str) -> list[str]:
        """Outcome line ids that may show progress on an indicator.

        A line applies when it names the indicator, and so does any line it
        declares interchangeable ("demonstration of only one is required").
        """
        ids: list[str] = []
        for r in self.outcome_lines():
            if indicator in r.applies_to:
                for rid in [r.id, *r.interchangeable]:
                    if rid not in ids:
                        ids.append(rid)
        return ids


def parse_plan(raw: object, source: str) -> Plan:
    """Validate a plan mapping; every error names the file and the rule."""
    if not isinstance(raw, dict):
        raise RuleFileError(f"{source}: expected a mapping at top level")
    rules_raw = raw.get("rules")
    if not isinstance(rules_raw, list):
        raise RuleFileError(f"{source}: 'rules' must be a list")
    rules: list[Rule] = []
    for i, item in enumerate(rules_raw):
        rid = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
        try:
            rules.append(RULE_ADAPTER.validate_python(item))
        except ValidationError as exc:
            raise RuleFileError(f"{source}: rule {rid}: {_short(exc)}") from None
    try:
        plan = Plan.model_validate({**raw, "rules": rules})
    except ValidationError as exc:
        raise RuleFileError(f"{source}: {_short(exc)}") from None
    _cross_check(plan, source)
    return plan


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _cross_check(plan: Plan, source: str) -> None:
    ids = [r.id for r in plan.rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RuleFileError(f"{source}: duplicate rule id(s) {dupes}")
    known = set(ids)
    for r in plan.rules:
        for code in r.applies_to:
            if code not in plan.indicators:
                raise RuleFileError(f"{source}: rule {r.id}: applies_to unknown indicator {code}")
        for other in r.interchangeable:
            if other not in known or plan.rule(other).component:
                raise RuleFileError(
                    f"{source}: rule {r.id}: interchangeable with unknown outcome {other}"
                )
        if isinstance(r, CompositeRule):
            for part in r.parts:
                if part not in known or part == r.id:
                    raise RuleFileError(f"{source}: rule {r.id}: unknown part {part}")
        if r.component and r.applies_to:
            raise RuleFileError(f"{source}: rule {r.id}: a component takes its parent's indicators")
        if not r.component and not r.applies_to:
            raise RuleFileError(f"{source}: rule {r.id}: applies_to is empty")
    for code in plan.indicators:
        if not plan.lines_for(code):
            raise RuleFileError(f"{source}: indicator {code} has no outcome line")
