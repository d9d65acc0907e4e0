"""The extract contract (extracts.yaml) and indicator codes as typed models.

The YAML files in this folder are copies of the shared contract; a test checks
they are identical to ``../shared/contracts`` whenever that folder is present.
Everything that reads extracts (ingest, expectations, staging SQL, the
generator's tests) derives its rules from these models, never from its own
list of columns.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

ColumnType = Literal[
    "string", "date", "timestamp", "integer", "decimal", "enum",
    "upn", "nhs_number", "ni_number", "uprn", "postcode",
]
IDENTIFIER_TYPES = ("upn", "nhs_number", "ni_number", "uprn")


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    type: ColumnType
    required: bool = False
    format: str | None = None
    values: list[str] | None = None
    min: int | None = None
    max: int | None = None
    pattern: str | None = None
    note: str | None = None


class ExtractSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = ""
    source: str
    delivery: Literal["snapshot", "delta"]
    key: list[str]
    columns: dict[str, ColumnSpec]
    scope: str | None = None
    note: str | None = None

    @property
    def name(self) -> str:
        """Table name: the file name without .csv (``yot_offences``)."""
        return self.file.removesuffix(".csv")

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    @property
    def has_record_status(self) -> bool:
        return "record_status" in self.columns


class Contract(BaseModel):
    files: dict[str, ExtractSpec] = Field(default_factory=dict)

    def extract(self, file_or_name: str) -> ExtractSpec:
        name = file_or_name if file_or_name.endswith(".csv") else f"{file_or_name}.csv"
        return self.files[name]


@cache
def load_contract() -> Contract:
    """The extract contract shipped with famlink."""
    text = resources.files(__package__).joinpath("extracts.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    for file_name, spec in raw["files"].items():
        spec["file"] = file_name
        for col_name, col in spec["columns"].items():
            col["name"] = col_name
    return Contract.model_validate(raw)


# The form of an indicator code (indicators.yaml: the headline problem's digit,
# then the plan's lettering: 1A, 3Aa). Ingest rejects a code of another form.
INDICATOR_CODE = "[0-9][A-Za-z]+"
_PLAN_LINE = re.compile(r"^  ([a-z_]+):\s*(#.*)?$")
_CODE_LINE = re.compile(rf'^    "({INDICATOR_CODE})":\s*(.*)$')


@cache
def load_indicators() -> dict[str, dict[str, str]]:
    """Indicator codes per plan: ``{plan: {code: description}}``.

    indicators.yaml is read line by line: its descriptions hold unquoted
    colons, so it is not strictly valid YAML, and the contract is not ours to
    edit.
    """
    text = resources.files(__package__).joinpath("indicators.yaml").read_text(encoding="utf-8")
    plans: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if m := _PLAN_LINE.match(line):
            current = plans.setdefault(m.group(1), {})
        elif (m := _CODE_LINE.match(line)) and current is not None:
            current[m.group(1)] = m.group(2).strip()
    return plans


def _plans() -> tuple[str, ...]:
    """The plans: one rule file each in rules/, in indicators.yaml's order.

    A plan of indicators.yaml without a rule file stops everything at once: its
    families could not be judged.
    """
    from rules.national import plan_names

    files = plan_names()
    declared = list(load_indicators())
    missing = [p for p in declared if p not in files]
    if missing:
        raise RuntimeError(f"indicators.yaml lists plan(s) {missing} with no rules/<plan>.yaml")
    return tuple(declared + [p for p in files if p not in declared])


PLANS = _plans()
