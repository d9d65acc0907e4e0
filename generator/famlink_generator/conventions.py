"""Recording conventions the extract contract leaves open, drawn per county.

The simulation (people, cohort, planted trajectories, truth) never looks at
these: they are a rendering layer applied as rows are written, so one seed
under any conventions is the same county with the same true claims. Under
``conventions="default"`` every hook is the identity and no random number is
drawn, so the output is byte-identical to the generator without this layer.

Each convention's first option is the default (how the generator always wrote
its files); ``"varied"`` draws one option per convention from the seed, and
``conventions_override`` forces an option (metamorphic tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from .rand import KeyedRandom

CONVENTIONS: dict[str, tuple[str, ...]] = {
    # practitioner_evidence.outcome_code: on every row / only on professional
    # statements / not on service_engagement and programme_completed rows /
    # dropped row by row (statements keep it)
    "outcome_code": ("every_row", "statements_only", "not_on_engagement", "mixed"),
    # practitioner_evidence.domain for services and programmes: the generator's
    # own words / one council name per service / that name with case, spacing
    # and punctuation varying row by row
    "service_names": ("generator", "council", "council_variants"),
    # Family Star Plus domain: official name / number 1-10 / spelling variants /
    # number or name row by row
    "star_domain": ("name", "number", "name_variants", "mixed"),
    # Family Star Plus reading: for the problem's person / family-level (no
    # person_ref) / family-level for some assessments
    "star_level": ("person", "family", "mixed"),
    # end_date of point-in-time evidence (statements, star readings): empty /
    # equal to start_date / either, row by row
    "end_dates": ("open", "point_closed", "mixed"),
    # programme_completed: start and completion dates / the completion date only
    "programme_dates": ("span", "completion_only"),
    # one person's later records under a second source id of the same service
    "split_ids": ("none", "social_care", "yot", "both"),
    # a termly/quarterly snapshot delivered again, byte-identical, a month later
    "redelivery": ("none", "repeat"),
    # names, addresses and identifiers: as generated / per-file styles (case,
    # spacing, NHS/NI formatting, postcode spacing, address line splits)
    "identity_format": ("plain", "varied"),
    # optional descriptive columns (lead worker, recorded by, middle names,
    # sex, town): as generated / left empty by some files
    "optional_columns": ("filled", "sparse"),
}
DEFAULTS: dict[str, str] = {k: v[0] for k, v in CONVENTIONS.items()}

STAR_DOMAINS = ("Physical health", "Your well-being", "Meeting emotional needs",
                "Keeping your children safe", "Social networks", "Education and learning",
                "Boundaries and behaviour", "Family routine", "Home and money", "Progress to work")
_ENGAGEMENT_KINDS = ("service_engagement", "programme_completed")
_POINT_KINDS = ("professional_statement", "family_star")
# optional descriptive columns a file may leave empty under optional_columns "sparse"
SPARSE_COLUMNS: dict[str, tuple[str, ...]] = {
    "cohort_families.csv": ("lead_worker",),
    "cohort_members.csv": ("middle_names", "sex"),
    "cohort_addresses.csv": ("town",),
    "practitioner_evidence.csv": ("recorded_by",),
    "police_incidents.csv": ("town",),
    "police_nominals.csv": ("sex",),
    "yot_offences.csv": ("sex",),
    "social_care_episodes.csv": ("sex",),
}
NAME_COLUMNS = ("first_name", "last_name", "middle_names")


@lru_cache(maxsize=1)
def names_data() -> dict[str, Any]:
    """data/service_names.yaml: council service names and Family Star spellings."""
    text = resources.files(__package__).joinpath("data/service_names.yaml").read_text(
        "utf-8")
    return yaml.safe_load(text)


def draw(seed: int, mode: str, override: dict[str, str] | None = None) -> dict[str, str]:
    """The conventions of one county: defaults, or one option each drawn from the seed."""
    chosen = dict(DEFAULTS)
    if mode == "varied":
        rnd = KeyedRandom(seed, 9_001)
        for name in sorted(CONVENTIONS):
            chosen[name] = rnd.choice(CONVENTIONS[name])
    for name, value in (override or {}).items():
        if name not in CONVENTIONS:
            raise ValueError(f"unknown convention {name!r}; known: {', '.join(CONVENTIONS)}")
        if value not in CONVENTIONS[name]:
            raise ValueError(f"convention {name} has no option {value!r}; "
                             f"choose one of: {', '.join(CONVENTIONS[name])}")
        chosen[name] = value
    return chosen


def spelling_variant(name: str, rnd: KeyedRandom) -> str:
    """The same name as typed: case, spacing, hyphens, ampersands, apostrophes."""
    op = rnd.randrange(8)
    if op == 0:
        return name.lower()
    if op == 1:
        return name.upper()
    if op == 2:
        return name.title()
    if op == 3 and " " in name:
        return name.replace(" ", "-", 1)
    if op == 4:
        return name + " "
    if op == 5 and " " in name:
        return name.replace(" ", "  ", 1)
    if op == 6 and (" and " in name or "'" in name):
        return name.replace(" and ", " & ").replace("'", "")
    return " " + name if op == 7 else name


@dataclass(frozen=True)
class EvidenceRow:
    """One practitioner_evidence row as it will be written."""

    person: int | None
    domain: str
    code: str
    start: int
    end: int | None


class Conventions:
    """The rendering hooks of one county (identity under the defaults)."""

    def __init__(self, seed: int, chosen: dict[str, str]) -> None:
        self.seed, self.chosen = seed, dict(chosen)
        self.default = self.chosen == DEFAULTS
        rnd = KeyedRandom(seed, 9_003)
        self.service = {key: rnd.choice(names) for key, names in
                        sorted(names_data()["services"].items())}
        self._file_style: dict[tuple[str, str], int] = {}

    def __getitem__(self, name: str) -> str:
        return self.chosen[name]

    # ------------------------------------------------------------ evidence
    def _service_name(self, domain: str, rnd: KeyedRandom) -> str:
        if self["service_names"] == "generator":
            return domain
        for prefix, suffix in (("Referred to ", ""), ("", ": issue managed")):
            if domain.startswith(prefix) and domain.endswith(suffix):
                core = domain[len(prefix):len(domain) - len(suffix)]
                if core in self.service:
                    name = self.service[core]
                    if self["service_names"] == "council_variants":
                        name = spelling_variant(name, rnd)
                    return prefix + name + suffix
        return domain

    def _star_domain(self, domain: str, rnd: KeyedRandom, family: int, day: int) -> str:
        style = self["star_domain"]
        if style == "mixed":  # one assessment (family, date) is written one way
            style = "number" if KeyedRandom(self.seed, 9_015, family, day).random() < 0.5 \
                else "name_variants"
        if style == "number":
            return str(STAR_DOMAINS.index(domain) + 1)
        if style == "name_variants":
            return rnd.choice(names_data()["star_domains"][domain])
        return domain

    def evidence(self, i: int, family: int, person: int | None, kind: str, domain: str,
                 code: str, start: int, end: int | None) -> EvidenceRow:
        """How the county's case system records one piece of evidence (i: its index)."""
        if self.default:
            return EvidenceRow(person, domain, code, start, end)
        rnd = KeyedRandom(self.seed, 9_011, i)
        oc = self["outcome_code"]
        if oc == "statements_only" and kind != "professional_statement" or \
                oc == "not_on_engagement" and kind in _ENGAGEMENT_KINDS or \
                oc == "mixed" and kind != "professional_statement" and rnd.random() < 0.5:
            code = ""
        if kind == "family_star":
            domain = self._star_domain(domain, rnd, family, start)
            level = self["star_level"]
            # one assessment (family, date) is recorded one way
            if level == "family" or level == "mixed" and \
                    KeyedRandom(self.seed, 9_013, family, start).random() < 0.5:
                person = None
        elif kind != "neet_status":
            domain = self._service_name(domain, rnd)
        if kind in _POINT_KINDS and end is None:
            ends = self["end_dates"]
            if ends == "point_closed" or ends == "mixed" and rnd.random() < 0.5:
                end = start
        if kind == "programme_completed" and end is not None and \
                self["programme_dates"] == "completion_only":
            start = end
        return EvidenceRow(person, domain, code, start, end)

    # ------------------------------------------------------------ split ids
    def split(self, source: str, p: int) -> bool:
        """Whether this cohort member's later records in source go under a second id."""
        mode = self["split_ids"]
        if mode == "none" or (mode != "both" and mode != source):
            return False
        return KeyedRandom(self.seed, 9_021, p, len(source)).random() < 0.5

    # ------------------------------------------------------------ redelivery
    def redeliver(self, month_index: int, fname: str) -> bool:
        """Whether last month's delivery of fname is sent again this month."""
        if self["redelivery"] == "none":
            return False
        return KeyedRandom(self.seed, 9_031, month_index, sum(map(ord, fname))).random() < 0.5

    # ------------------------------------------------------------ any file
    def _style(self, fname: str, column: str, n: int) -> int:
        key = (fname, column)
        s = self._file_style.get(key)
        if s is None:
            s = KeyedRandom(self.seed, 9_041, sum(map(ord, fname)), sum(map(ord, column)),
                            len(column)).randrange(n)
            self._file_style[key] = s
        return s

    def row_hook(self, fname: str, cols: list[str]) -> Any:
        """A function rewriting a row's values by this file's styles, or None (identity)."""
        if self["identity_format"] == "plain" and self["optional_columns"] == "filled":
            return None
        ops: list[tuple[int, Any]] = []
        if self["identity_format"] == "varied":
            for i, col in enumerate(cols):
                if col in NAME_COLUMNS:
                    ops.append((i, (_keep, str.upper, _title, _pad)[self._style(fname, col, 4)]))
                elif col == "postcode":
                    ops.append((i, (_keep, _pc_tight, str.lower, _pc_upper)[
                        self._style(fname, col, 4)]))
                elif col == "nhs_number":
                    ops.append((i, (_keep, _nhs_spaced, _nhs_plain)[self._style(fname, col, 3)]))
                elif col == "ni_number":
                    ops.append((i, (_keep, _ni_pairs, str.lower, _ni_plain)[
                        self._style(fname, col, 4)]))
                elif col in ("address_line1", "town"):
                    ops.append((i, (_keep, str.upper)[self._style(fname, col, 2)]))
        if self["optional_columns"] == "sparse":
            for col in SPARSE_COLUMNS.get(fname, ()):
                if self._style(fname, "sparse:" + col, 2):
                    ops.append((cols.index(col), _blank))
        joined = self["identity_format"] == "varied" and fname == "cohort_addresses.csv" and \
            self._style(fname, "address_lines", 2) == 1
        l1, l2 = (cols.index("address_line1"), cols.index("address_line2")) if joined else (0, 0)
        if not ops and not joined:
            return None

        def hook(values: list[str]) -> list[str]:
            out = list(values)
            if joined and out[l2]:
                out[l1], out[l2] = f"{out[l2]}, {out[l1]}", ""
            for i, fn in ops:
                if out[i]:
                    out[i] = fn(out[i])
            return out
        return hook


def _keep(v: str) -> str:
    return v


def _blank(_v: str) -> str:
    return ""


def _title(v: str) -> str:
    return v.title()


def _pad(v: str) -> str:
    return v + " "


def _pc_tight(v: str) -> str:
    return re.sub(r"\s+", "", v)


def _pc_upper(v: str) -> str:
    return v.upper()


def _nhs_spaced(v: str) -> str:
    d = v.replace(" ", "")
    return f"{d[:3]} {d[3:6]} {d[6:]}" if len(d) == 10 else v


def _nhs_plain(v: str) -> str:
    return v.replace(" ", "")


def _ni_pairs(v: str) -> str:
    d = v.replace(" ", "").upper()
    return f"{d[:2]} {d[2:4]} {d[4:6]} {d[6:8]} {d[8:]}" if len(d) == 9 else v


def _ni_plain(v: str) -> str:
    return v.replace(" ", "").upper()
