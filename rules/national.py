"""The national rules every plan shares (rules/national.yaml), and the list of plans.

Eligibility, the SSP/CE ranking and the results payment are declared once, in
``rules/national.yaml``; the plans are the rule files present in ``rules/``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rules.models import RuleFileError

RULES_DIR = Path(__file__).resolve().parent
NATIONAL_PATH = RULES_DIR / "national.yaml"
# Files in rules/ that are not a council's plan.
NOT_PLANS = ("national", "evidence_vocabulary")


class ClaimRanking(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    earlier_first: Literal[True] = True
    on_tie: Literal["SSP", "CE"] = "SSP"


class NationalRules(BaseModel):
    """What makes a family eligible, which claim is made, and what it is paid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    min_problems: int = Field(ge=1, le=6)
    national_problems: list[int] = Field(min_length=1)
    headline_problems: dict[int, str] = Field(min_length=1)
    claim_ranking: ClaimRanking
    results_payment_gbp: int = Field(gt=0)
    problems_found_later: Literal["not_part_of_the_claim"]

    @model_validator(mode="after")
    def _check(self) -> NationalRules:
        if any(p < 1 or p > 9 for p in self.national_problems):
            raise ValueError("national_problems are headline problem numbers 1-9")
        if self.min_problems > len(self.national_problems):
            raise ValueError("min_problems exceeds the number of national problems")
        unnamed = sorted(set(self.national_problems) - set(self.headline_problems))
        if unnamed:
            raise ValueError(f"headline_problems names no problem {unnamed}")
        return self


@cache
def load_national(path: Path = NATIONAL_PATH) -> NationalRules:
    """Load and validate rules/national.yaml (an error names the file and the field)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuleFileError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError:
        raise RuleFileError(f"{path}: not valid YAML") from None
    try:
        return NationalRules.model_validate(raw)
    except ValidationError as exc:
        parts = [".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors()]
        raise RuleFileError(f"{path}: {'; '.join(parts)}") from None


def plan_names(rules_dir: Path = RULES_DIR) -> list[str]:
    """The plans: one rule file each in rules/ (national and vocabulary files aside)."""
    return sorted(p.stem for p in rules_dir.glob("*.yaml") if p.stem not in NOT_PLANS)


def problem_names(plan: str | None = None) -> dict[int, str]:
    """Headline problem number -> name: the national six, plus the plan's local ones."""
    return dict(_problem_names(plan))


@cache
def _problem_names(plan: str | None) -> dict[int, str]:
    names = dict(load_national().headline_problems)
    if plan:
        from rules.engine import load_plan

        try:
            names.update(load_plan(plan).local_problems)
        except RuleFileError:
            pass  # an unknown plan (an old ledger's) still gets the national names
    return names


def name_problems(problems: str | None, plan: str | None = None, sep: str = ";") -> str:
    """``'1;2;7'`` -> ``'1 crime or anti-social behaviour; 2 ...; 7 ...'`` (unknown: bare)."""
    names = problem_names(plan)
    out = []
    for part in (problems or "").split(sep):
        part = part.strip()
        if not part:
            continue
        name = names.get(int(part)) if part.isdigit() else None
        out.append(f"{part} {name}" if name else part)
    return "; ".join(out)
