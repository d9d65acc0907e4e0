"""Generator configuration and run summary (the public API's data types)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

SCALES: dict[str, tuple[int, int]] = {
    "small": (3_000, 60),
    "county": (1_500_000, 3_000),
}


class GeneratorConfig(BaseModel):
    """What to generate; scale presets can be overridden by residents/cohort_families."""

    out_dir: Path
    plan: str = "countywide"
    seed: int = 1
    scale: Literal["small", "county"] = "small"
    start_month: str = "2023-01"
    months: int = Field(24, ge=1, le=120)
    residents: int | None = Field(None, ge=200)
    cohort_families: int | None = Field(None, ge=1)
    plant_faults: bool = True
    backlog_months: int = Field(36, ge=12, le=60)
    # recording conventions the contract leaves open (see conventions.py):
    # "default" writes as the generator always has; "varied" draws them per county
    conventions: Literal["default", "varied"] = "default"
    conventions_override: dict[str, str] = Field(default_factory=dict)

    @field_validator("start_month")
    @classmethod
    def _month(cls, v: str) -> str:
        y, m = v.split("-")
        if len(y) != 4 or not 1 <= int(m) <= 12:
            raise ValueError("start_month must be YYYY-MM")
        return f"{int(y):04d}-{int(m):02d}"

    @field_validator("conventions_override")
    @classmethod
    def _override(cls, v: dict[str, str]) -> dict[str, str]:
        from .conventions import draw

        draw(0, "default", v)  # raises naming the unknown convention or option
        return v

    def n_residents(self) -> int:
        """Residents to simulate (override or scale preset)."""
        return self.residents or SCALES[self.scale][0]

    def n_families(self) -> int:
        """Cohort families to attach (override or scale preset)."""
        return self.cohort_families or SCALES[self.scale][1]


class GenerateSummary(BaseModel):
    """What was written, for the CLI to print."""

    out_dir: Path
    plan: str
    seed: int
    months: list[str]
    residents: int
    households: int
    cohort_families: int
    cohort_people: int
    files_written: int
    rows_written: int
    planted_faults: int
    bytes_written: int
    counts: dict[str, dict[str, int]]
    conventions: dict[str, str] = Field(default_factory=dict)
