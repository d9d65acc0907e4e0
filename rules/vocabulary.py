"""What practitioner evidence is, by its kind and domain: rules/evidence_vocabulary.yaml.

A row that carries no usable outcome_code supports an outcome when its kind,
or its kind and domain (a service or programme name), say what it is. The
vocabulary is data so that a council adds a local service's name without
touching code; a file that does not validate stops the run naming the file
and the entry.

Normalisation is defined once, as the SQL macro ``NORMALISE_SQL``: the engine
applies it to the vocabulary's names and to the evidence rows alike, so both
sides are always normalised the same way.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rules.models import EVIDENCE_KINDS, EvidenceKind, RuleFileError

RULES_DIR = Path(__file__).resolve().parent
VOCABULARY_PATH = RULES_DIR / "evidence_vocabulary.yaml"

# lower case, "&" read as "and", apostrophes dropped, any other run of
# characters that are not letters or digits a single space, trimmed.
NORMALISE_SQL = (
    "CREATE OR REPLACE MACRO evidence_norm(x) AS trim(regexp_replace("
    "replace(replace(replace(lower(x), '&', ' and '), '''', ''), '\u2019', ''), "
    "'[^a-z0-9]+', ' ', 'g'))"
)
# Kinds whose domain names a service or programme (the rest say what they are
# by their kind, or are Family Star readings or statements).
NAMED_KINDS = ("service_engagement", "programme_completed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StarDomain(_Strict):
    """A Family Star Plus domain: its number and the names case systems write."""

    number: int = Field(ge=1, le=10)
    names: list[str] = Field(min_length=1)


class KindEntry(_Strict):
    """A kind that says what it evidences by itself (a debt plan, young carer support)."""

    problems: list[int] = Field(min_length=1)
    plans: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("problems")
    @classmethod
    def _problems(cls, v: list[int]) -> list[int]:
        if any(p < 1 or p > 9 for p in v):
            raise ValueError("problems are headline problem numbers (first digit of indicator)")
        return v


class ServiceEntry(KindEntry):
    """A service or programme: the names it goes by and what it can evidence."""

    id: str
    kinds: list[EvidenceKind] = Field(min_length=1)
    names: list[str] = Field(default_factory=list)
    exact: list[str] = Field(default_factory=list, description="names matched only whole")

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        bad = [k for k in v if k not in NAMED_KINDS]
        if bad:
            raise ValueError(f"kinds {bad}: only {list(NAMED_KINDS)} are read by name")
        return v


class Vocabulary(_Strict):
    family_star: list[StarDomain]
    kinds: dict[EvidenceKind, KindEntry] = Field(default_factory=dict)
    services: list[ServiceEntry] = Field(default_factory=list)

    def entries(self) -> list[tuple[str, KindEntry]]:
        """Every entry that maps evidence to problems, with the name errors use."""
        out: list[tuple[str, KindEntry]] = [(f"kinds.{k}", e) for k, e in self.kinds.items()]
        return out + [(f"services.{s.id}", s) for s in self.services]

    def targets(self, entry: KindEntry, plan: str, indicators: list[str]) -> list[str]:
        """Indicator codes or outcome line ids (upper case) this entry evidences in a plan."""
        if plan in entry.plans:
            return sorted({c.upper() for c in entry.plans[plan]})
        return sorted(c.upper() for c in indicators if c[:1].isdigit()
                      and int(c[0]) in entry.problems)


def normalise(values: list[str]) -> list[str]:
    """The names as the SQL macro normalises them (used to check the file)."""
    con = duckdb.connect()
    try:
        con.execute(NORMALISE_SQL)
        rows = con.execute("SELECT evidence_norm(v) FROM unnest(?::VARCHAR[]) AS t(v)",
                           [values]).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def parse_vocabulary(raw: object, source: str) -> Vocabulary:
    """Validate the vocabulary; every error names the file and the entry."""
    if not isinstance(raw, dict):
        raise RuleFileError(f"{source}: expected a mapping at top level")
    unknown = sorted(set(raw) - set(Vocabulary.model_fields))
    if unknown:
        raise RuleFileError(f"{source}: unknown section(s) {unknown}")
    parsed: dict[str, object] = {}
    sections = (("family_star", StarDomain), ("services", ServiceEntry))
    for key, model in sections:
        items = raw.get(key) or []
        if not isinstance(items, list):
            raise RuleFileError(f"{source}: '{key}' must be a list")
        out = []
        for i, item in enumerate(items):
            label = (item.get("id") or item.get("number") or f"#{i + 1}"
                     if isinstance(item, dict) else f"#{i + 1}")
            try:
                out.append(model.model_validate(item))
            except ValidationError as exc:
                raise RuleFileError(f"{source}: {key} entry {label}: {_short(exc)}") from None
        parsed[key] = out
    kinds = raw.get("kinds") or {}
    if not isinstance(kinds, dict):
        raise RuleFileError(f"{source}: 'kinds' must be a mapping")
    parsed_kinds: dict[str, KindEntry] = {}
    for kind, item in kinds.items():
        if kind not in EVIDENCE_KINDS:
            raise RuleFileError(f"{source}: kinds entry {kind}: not an evidence kind of the "
                                f"contract ({', '.join(EVIDENCE_KINDS)})")
        try:
            parsed_kinds[kind] = KindEntry.model_validate(item)
        except ValidationError as exc:
            raise RuleFileError(f"{source}: kinds entry {kind}: {_short(exc)}") from None
    vocab = Vocabulary(family_star=parsed["family_star"], kinds=parsed_kinds,
                       services=parsed["services"])
    _cross_check(vocab, source)
    return vocab


def _short(exc: ValidationError) -> str:
    return "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors())


def _cross_check(vocab: Vocabulary, source: str) -> None:
    numbers = [d.number for d in vocab.family_star]
    if sorted(numbers) != list(range(1, 11)):
        raise RuleFileError(f"{source}: family_star must list domains 1 to 10 once each")
    ids = [s.id for s in vocab.services]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RuleFileError(f"{source}: duplicate service id(s) {dupes}")
    for s in vocab.services:
        if not s.names and not s.exact:
            raise RuleFileError(f"{source}: services entry {s.id}: no names")
    for group, named in (
        ("family_star", [(f"domain {d.number}", d.names) for d in vocab.family_star]),
        ("services", [(s.id, [*s.names, *s.exact]) for s in vocab.services]),
    ):
        seen: dict[str, str] = {}
        for label, names in named:
            for name, norm in zip(names, normalise(names), strict=True):
                if not norm:
                    raise RuleFileError(f"{source}: {group} entry {label}: name {name!r} "
                                        "is empty once normalised")
                if norm in seen and seen[norm] != label:
                    raise RuleFileError(f"{source}: {group} entry {label}: name {name!r} is "
                                        f"also a name of {seen[norm]}")
                seen[norm] = label


def check_against_plan(vocab: Vocabulary, plan_name: str, codes: set[str],
                       source: str) -> None:
    """Every code an entry narrows a plan to is an indicator or outcome line of that plan."""
    for label, entry in vocab.entries():
        bad = sorted(c for c in entry.plans.get(plan_name, []) if c.upper() not in codes)
        if bad:
            raise RuleFileError(f"{source}: {label}: plans.{plan_name} names {bad}, not an "
                                f"indicator or outcome line of {plan_name}")


@cache
def load_vocabulary(path: Path = VOCABULARY_PATH) -> Vocabulary:
    """Load and validate the vocabulary (errors name the file and the entry)."""
    if not path.is_file():
        raise RuleFileError(f"{path}: the evidence vocabulary is missing")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RuleFileError(f"{path}: not valid YAML{where}") from None
    return parse_vocabulary(raw, str(path))
