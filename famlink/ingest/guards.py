"""The ingest guards' settings (guards.yaml) as typed models.

What counts as a suspicious shrink, how often each extract is due, and which
columns hold references or indicator codes are data, not code: a council can
tune them without touching the readers.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from famlink.contract import load_contract

Cadence = Literal["monthly", "termly", "quarterly"]


class Scope(BaseModel):
    """Keys older than the scope at the delivery's month may leave a snapshot freely."""

    model_config = ConfigDict(extra="forbid")

    column: str
    academic_years: int | None = Field(default=None, ge=1)
    years: int | None = Field(default=None, ge=1, description="a rolling window of years "
                              "back from the delivery's month, on a date or timestamp column")

    @model_validator(mode="after")
    def _one_window(self) -> Scope:
        if (self.academic_years is None) == (self.years is None):
            raise ValueError("a scope sets exactly one of academic_years and years")
        return self


class ExtractGuard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadence: Cadence | None = None
    max_removed_share: float | None = Field(default=None, ge=0, le=1)
    refuse_empty: bool | None = None
    scope: Scope | None = None


class Guards(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadence_months: dict[Cadence, int]
    defaults: ExtractGuard
    extracts: dict[str, ExtractGuard] = Field(default_factory=dict)
    reference_columns: list[str] = Field(default_factory=list)
    indicator_columns: dict[str, list[str]] = Field(default_factory=dict)

    def for_extract(self, name: str) -> ExtractGuard:
        """The extract's settings with the defaults filled in."""
        own = self.extracts.get(name, ExtractGuard())
        merged = self.defaults.model_dump()
        merged.update({k: v for k, v in own.model_dump().items() if v is not None})
        return ExtractGuard.model_validate(merged)

    def cadence_of(self, name: str) -> int:
        """Months between two deliveries the extract is due at most."""
        return self.cadence_months[self.for_extract(name).cadence or "monthly"]


@cache
def load_guards() -> Guards:
    """guards.yaml, checked against the contract: a typo in an extract name is an error."""
    text = resources.files(__package__).joinpath("guards.yaml").read_text(encoding="utf-8")
    guards = Guards.model_validate(yaml.safe_load(text))
    known = {spec.name for spec in load_contract().files.values()}
    unknown = (set(guards.extracts) | set(guards.indicator_columns)) - known
    if unknown:
        raise ValueError(f"guards.yaml names extracts not in the contract: {sorted(unknown)}")
    return guards
