"""The synthetic county generator writes files that honour the input contract."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest
import yaml

from famlink_generator import GeneratorConfig, generate_county
from famlink_generator.cohort import KIND_PEOPLE, indicator_kinds
from famlink_generator.conventions import CONVENTIONS, STAR_DOMAINS, draw, names_data
from famlink_generator.ids import nhs_valid, ni_valid, postcode_valid, upn_valid, uprn_valid
from famlink_generator.trajectories import Planner

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = yaml.safe_load((ROOT / "famlink/contract/extracts.yaml").read_text("utf-8"))["files"]


def _indicator_codes() -> dict[str, list[str]]:
    """Plan -> codes from indicators.yaml, read by line: its values are not all valid YAML."""
    plans: dict[str, list[str]] = {}
    plan = None
    for line in (ROOT / "famlink/contract/indicators.yaml").read_text("utf-8").splitlines():
        m = re.match(r"^  (\w+):\s*(#.*)?$", line)
        if m:
            plan = m.group(1)
            plans[plan] = []
            continue
        m = re.match(r'^    "(\w+)":', line)
        if m and plan:
            plans[plan].append(m.group(1))
    return plans


INDICATORS = {"plans": _indicator_codes()}
SNAPSHOTS = [f for f, spec in CONTRACT.items() if spec["delivery"] == "snapshot"]


def _cfg(out: Path, plan: str = "countywide", seed: int = 1) -> GeneratorConfig:
    return GeneratorConfig(out_dir=out, plan=plan, seed=seed, start_month="2023-01", months=14,
                           residents=1500, cohort_families=24)


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("county")
    generate_county(_cfg(out))
    return out


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def _months(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if re.fullmatch(r"\d{4}-\d{2}", p.name))


def _faults(out: Path) -> dict[tuple[str, str, int], dict[str, str]]:
    with open(out / "_truth/planted_faults.csv", encoding="utf-8") as fh:
        return {(r["month"], r["file"], int(r["row_number"])): r for r in csv.DictReader(fh)}


def _value_ok(spec: dict, value: str) -> bool:
    if value == "":
        return not spec.get("required")
    typ = spec["type"]
    try:
        if typ in ("date", "timestamp"):
            datetime.strptime(value, spec["format"])
        elif typ == "integer":
            n = int(value)
            return spec.get("min", n) <= n <= spec.get("max", n)
        elif typ == "decimal":
            Decimal(value)
        elif typ == "enum":
            return value in spec["values"]
        elif typ == "upn":
            return upn_valid(value)
        elif typ == "nhs_number":
            return nhs_valid(value)
        elif typ == "ni_number":
            return ni_valid(value)
        elif typ == "postcode":
            return postcode_valid(value)
        elif typ == "uprn":
            return uprn_valid(value)
        elif "pattern" in spec:
            return re.fullmatch(spec["pattern"], value) is not None
    except (ValueError, InvalidOperation):
        return False
    return True


def test_headers_match_contract(county: Path) -> None:
    seen = set()
    for month in _months(county):
        for path in month.iterdir():
            assert path.name in CONTRACT, path
            header, _ = _read(path)
            assert header == list(CONTRACT[path.name]["columns"]), path
            raw = path.read_bytes()
            assert raw.decode("utf-8-sig")
            seen.add(path.name)
    assert seen == set(CONTRACT)


def test_values_parse_except_planted_faults(county: Path) -> None:
    _check_values(county)


def _check_values(county: Path) -> None:
    faults = _faults(county)
    hit = set()
    for month in _months(county):
        for path in month.iterdir():
            header, rows = _read(path)
            spec = CONTRACT[path.name]["columns"]
            for i, row in enumerate(rows, start=1):
                key = (month.name, path.name, i)
                bad = len(row) != len(header) or not all(
                    _value_ok(spec[c], v) for c, v in zip(header, row, strict=True))
                if key in faults and faults[key]["kind"] != "duplicate_key":
                    assert bad, f"planted fault not visible: {key}"
                    hit.add(key)
                else:
                    assert not bad, f"{key}: {row}"
    assert hit, "expected some planted faults"


def test_snapshot_keys_unique_except_planted(county: Path) -> None:
    faults = _faults(county)
    for month in _months(county):
        for name in SNAPSHOTS:
            path = month / name
            if not path.exists():
                continue
            header, rows = _read(path)
            idx = [header.index(k) for k in CONTRACT[name]["key"]]
            seen = set()
            for i, row in enumerate(rows, start=1):
                if len(row) != len(header):
                    continue
                k = tuple(row[j] for j in idx)
                if k in seen:
                    assert faults.get((month.name, name, i), {}).get("kind") == "duplicate_key"
                seen.add(k)


def test_deliveries_follow_schedule(county: Path) -> None:
    months = {m.name: {p.name for p in m.iterdir()} for m in _months(county)}
    for name, files in months.items():
        mm = int(name[5:])
        assert ("school_attendance.csv" in files) == (mm in (1, 5, 9))
        assert ("dwp_benefits.csv" in files) == (mm in (3, 6, 9, 12))
        assert "cohort_members.csv" in files and "police_incidents.csv" in files


def test_cohort_problems_use_plan_codes(county: Path, tmp_path: Path) -> None:
    other = tmp_path / "thurrock"
    generate_county(_cfg(other, plan="thurrock"))
    for out, plan in ((county, "countywide"), (other, "thurrock")):
        codes = set(INDICATORS["plans"][plan])
        last = _months(out)[-1]
        _, fams = _read(last / "cohort_families.csv")
        _, probs = _read(last / "cohort_problems.csv")
        by_family: dict[str, set[str]] = {}
        for fid, code, _ref, _day in probs:
            assert code in codes, (plan, code)
            by_family.setdefault(fid, set()).add(code[0])
        assert {f[0] for f in fams} == set(by_family)
        multi = sum(len(v) >= 2 for v in by_family.values())
        assert multi >= 0.8 * len(by_family)


def test_indicator_map_covers_every_plan() -> None:
    kinds = indicator_kinds()["plans"]
    for plan, codes in INDICATORS["plans"].items():
        assert set(kinds[plan]) == set(codes), plan
        for code in codes:
            ks = kinds[plan][code]
            for k in [ks] if isinstance(ks, str) else ks:
                assert k in KIND_PEOPLE and hasattr(Planner, f"_k_{k}"), (plan, code, k)


def _digest(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_deterministic_per_seed(county: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_county(_cfg(again))
    assert _digest(again) == _digest(county)
    other = tmp_path / "other"
    generate_county(_cfg(other, seed=2))
    assert _digest(other) != _digest(county)


def test_truth_references_real_records(county: Path) -> None:
    truth = county / "_truth"
    for name in ("people.csv", "records.csv", "incidents.csv", "outcomes.csv",
                 "employment.csv", "planted_faults.csv", "manifest.json"):
        assert (truth / name).exists(), name
    with open(truth / "people.csv", encoding="utf-8") as fh:
        people = {r["true_person_id"]: r for r in csv.DictReader(fh)}
    keys: dict[str, set[str]] = {}
    for month in _months(county):
        for path in month.iterdir():
            header, rows = _read(path)
            idx = [header.index(k) for k in CONTRACT[path.name]["key"]]
            ks = keys.setdefault(path.name, set())
            for row in rows:
                if len(row) == len(header):
                    ks.add("|".join(row[j] for j in idx))
    with open(truth / "records.csv", encoding="utf-8") as fh:
        recs = list(csv.DictReader(fh))
    assert recs
    files = {r["file"] for r in recs}
    assert {"school_attendance.csv", "police_nominals.csv", "social_care_episodes.csv",
            "cohort_members.csv", "dwp_benefits.csv", "yot_offences.csv"} <= files
    missing = [r for r in recs if r["record_key"] not in keys[r["file"]]]
    # a record whose only delivery was a planted whole-row fault may not parse back
    assert len(missing) <= len(_faults(county)), missing[:5]
    assert all(r["true_person_id"] in people for r in recs)
    with open(truth / "outcomes.csv", encoding="utf-8") as fh:
        outcomes = list(csv.DictReader(fh))
    assert {o["trajectory"] for o in outcomes} == {"improving", "not_improving", "too_early"}
    with open(truth / "incidents.csv", encoding="utf-8") as fh:
        incs = list(csv.DictReader(fh))
    assert {i["incident_ref"] for i in incs} <= keys["police_incidents.csv"] | {
        i["incident_ref"] for i in incs if i["matched_by"] == "none"}
    assert any(i["family_id"] for i in incs)


def test_utf8_names_survive(county: Path) -> None:
    with open(county / "_truth/people.csv", encoding="utf-8") as fh:
        names = {r["first_name"] for r in csv.DictReader(fh)} | set()
    accented = {n for n in names if any(ord(ch) > 127 for ch in n)}
    assert accented
    text = "".join(p.read_text("utf-8-sig") for m in _months(county) for p in m.iterdir()
                   if p.name in ("school_attendance.csv", "cohort_members.csv"))
    assert any(n in text for n in accented)
    assert "'" in text  # O'Brien, D'Souza


def test_identifier_rules() -> None:
    assert nhs_valid("943 476 5919") and not nhs_valid("9434765918")
    assert ni_valid("AB123456C") and not ni_valid("BG123456C") and not ni_valid("QA123456C")
    assert upn_valid("A881000012345") is False or upn_valid("A881000012345")
    from famlink_generator.ids import make_upn
    u = make_upn(42)
    assert upn_valid(u) and not upn_valid(("B" if u[0] != "B" else "C") + u[1:])


def test_continuing_problems_have_no_quiet_spell() -> None:
    """too_early / not_improving events recur every RECUR_GAP days at most, so no plan's
    window (3 months or more) passes for an improvement before the change (too_early) or
    after it (not_improving)."""
    import random

    from famlink_generator.cohort import Family, Problem
    from famlink_generator.trajectories import RECUR_GAP, Planner, Timeline

    pl = object.__new__(Planner)
    pl.tl = Timeline(0, 800, 0)
    fam = Family(0, "F", 0, [0], 100, "x", {})
    for trajectory, change in (("too_early", 700), ("not_improving", 200)):
        for seed in range(20):
            pr = Problem("1A", "asb", 0, 100, trajectory, change)
            days = pl._windows(fam, pr, random.Random(seed), (2, 3))
            after = [x for x in days if x >= fam.attached_on]
            if trajectory == "too_early":
                assert max(after) < change and change - max(after) <= 12
                gaps = [b - a for a, b in zip([fam.attached_on, *after], after, strict=False)]
            else:
                assert min(after) == change and 800 - max(after) <= RECUR_GAP[1] + 3
                gaps = [b - a for a, b in zip(after, after[1:], strict=False)]
            assert max(gaps) <= RECUR_GAP[1] + 5, (trajectory, seed, after)


# ------------------------------------------------------ incidents: victims and suspects
# the plans whose 5B is domestic_perpetrator: a member planted as the perpetrator
DA_PERPETRATOR_PLANS = ("thurrock", "cumbria", "central_bedfordshire")


def _planted(plan: str, seed: int, residents: int = 900, families: int = 40,
             months: int = 24) -> tuple:
    """A county, its cohort and what is planted for it (no delivery written: ~0.1 s)."""
    from datetime import date

    from famlink_generator.calendar import month_end, month_start, o
    from famlink_generator.cohort import select_families
    from famlink_generator.county import _last_att_term
    from famlink_generator.people import build_county
    from famlink_generator.trajectories import Timeline, plan_cohort

    start = date(2023, 1, 1)
    c = build_county(residents, seed, o(start))
    fams = select_families(c, families, seed, o(start), months)
    tl = Timeline(o(start), o(month_end(month_start(2023, 1, months - 1))),
                  _last_att_term(start, months))
    return c, fams, plan_cohort(c, fams, plan, seed, tl)


def test_no_planted_incident_names_one_person_twice() -> None:
    """No planted incident names one person twice: sources.police writes one nominal per
    person per incident, so a domestic abuse perpetrator planted as her own victim lost
    her charged suspect row (as did an offender drawn as his own victim). The victim of
    a planted perpetrator is another adult of the family, a woman first; a lone parent's
    is an outsider (in no cohort family). Both cases that planted a perpetrator as her
    own victim, a lone mother and a mother whose only other adult is a man, occur here."""
    from famlink_generator.people import ROLE_CHILD

    lone_mothers = with_a_man = 0
    for plan in DA_PERPETRATOR_PLANS:
        for seed in range(1, 6):
            c, fams, store = _planted(plan, seed)
            cohort = {p for f in fams for p in f.members}
            at_home: dict[int, list[dict[str, int]]] = {}
            for inc in store.incidents:
                people = [p for p, _role, _res in inc["nominals"]]
                assert len(set(people)) == len(people), (plan, seed, inc)
                if inc["category"] == "DOMESTIC":
                    at_home.setdefault(inc["h"], []).append(
                        {role: p for p, role, _res in inc["nominals"]})
            for f in fams:
                adults = [p for p in f.members if c.role[p] != ROLE_CHILD]
                for pr in f.problems:
                    if pr.kind != "domestic_perpetrator":
                        continue
                    perp = pr.person
                    hers = [n for n in at_home.get(f.household, []) if n["SUSPECT"] == perp]
                    assert hers, (plan, seed, f.family_id)
                    others = [p for p in adults if p != perp]
                    for n in hers:
                        assert n["VICTIM"] != perp, (plan, seed, f.family_id)
                        if others:
                            assert n["VICTIM"] in others, (plan, seed, f.family_id)
                        else:
                            assert n["VICTIM"] not in cohort, (plan, seed, f.family_id)
                    if c.sex[perp] == 1 and not any(c.sex[p] == 1 for p in others):
                        lone_mothers += not others
                        with_a_man += bool(others)
    assert lone_mothers >= 3 and with_a_man >= 3, (lone_mothers, with_a_man)


def test_written_domestic_incidents_name_a_victim_and_a_suspect(tmp_path: Path) -> None:
    """In the deliveries every domestic incident at a cohort home has one VICTIM and one
    SUSPECT row, two people, and a lone mother planted as the perpetrator is the suspect
    of hers, an outsider the victim (she was written as her own victim, no suspect row)."""
    out = tmp_path / "cb"
    generate_county(_cfg(out, plan="central_bedfordshire", seed=3).model_copy(
        update={"out_dir": out, "plant_faults": False}))

    def rows(name: str) -> list[dict[str, str]]:
        with open(out / "_truth" / name, encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    people = {r["true_person_id"]: r for r in rows("people.csv")}
    family_of = {r["incident_ref"]: r["family_id"] for r in rows("incidents.csv")
                 if r["family_id"]}
    who = {r["record_key"]: r["true_person_id"] for r in rows("records.csv")
           if r["file"] == "police_nominals.csv"}
    domestic: set[str] = set()
    named: dict[str, dict[str, set[str]]] = {}
    for month in _months(out):
        header, incs = _read(month / "police_incidents.csv")
        ref, cat = header.index("incident_ref"), header.index("category")
        domestic |= {r[ref] for r in incs if r[cat] == "DOMESTIC" and r[ref] in family_of}
        header, noms = _read(month / "police_nominals.csv")
        ref, nid, role = (header.index(k) for k in ("incident_ref", "nominal_id", "role"))
        for r in noms:
            named.setdefault(r[ref], {}).setdefault(r[role], set()).add(
                who[f"{r[ref]}|{r[nid]}"])
    assert domestic
    for ref in domestic:
        roles = named[ref]
        assert set(roles) == {"VICTIM", "SUSPECT"}, (ref, roles)
        assert len(roles["VICTIM"] | roles["SUSPECT"]) == 2, (ref, roles)
    lone = 0
    for o in rows("outcomes.csv"):
        if o["kind"] != "domestic_perpetrator":
            continue
        fid = o["family_id"]
        perp = next(t for t, p in people.items() if p["person_ref"] == o["person_ref"])
        adults = [t for t, p in people.items() if p["family_id"] == fid and p["role"] != "child"]
        if adults != [perp] or people[perp]["sex"] != "F":
            continue
        lone += 1
        hers = [ref for ref in domestic if family_of[ref] == fid
                and named[ref]["SUSPECT"] == {perp}]
        assert hers, fid
        for ref in hers:
            (victim,) = named[ref]["VICTIM"]
            assert people[victim]["family_id"] == "", (fid, ref, victim)
    assert lone >= 2, lone


# ---------------------------------------------------------------- conventions
# every convention at a non-default option: what "varied" can draw, all at once
ALL_VARIED = {"outcome_code": "statements_only", "service_names": "council_variants",
              "star_domain": "mixed", "star_level": "mixed", "end_dates": "mixed",
              "programme_dates": "completion_only", "split_ids": "both",
              "redelivery": "repeat", "identity_format": "varied",
              "optional_columns": "sparse"}
TRUTH_FILES = ("people.csv", "records.csv", "incidents.csv", "outcomes.csv",
               "outcome_months.csv", "employment.csv", "planted_faults.csv")


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("varied")
    generate_county(_cfg(out).model_copy(update={"out_dir": out,
                                                 "conventions_override": ALL_VARIED}))
    return out


def test_truth_does_not_depend_on_conventions(county: Path, varied: Path) -> None:
    for name in TRUTH_FILES:
        assert (county / "_truth" / name).read_bytes() == (varied / "_truth" / name).read_bytes()
    last = _months(county)[-1].name
    assert (county / last / "practitioner_evidence.csv").read_bytes() != (
        varied / last / "practitioner_evidence.csv").read_bytes()
    manifest = json.loads((varied / "_truth/manifest.json").read_text("utf-8"))
    assert manifest["conventions"] == ALL_VARIED
    assert "conventions" not in json.loads((county / "_truth/manifest.json").read_text("utf-8"))


def test_varied_values_parse_except_planted_faults(varied: Path) -> None:
    _check_values(varied)


def test_varied_draws_per_county() -> None:
    drawn = [draw(seed, "varied") for seed in range(40)]
    for name, options in CONVENTIONS.items():
        assert {d[name] for d in drawn} == set(options), name
    assert draw(7, "varied") == draw(7, "varied")
    assert draw(7, "default") == {k: v[0] for k, v in CONVENTIONS.items()}
    assert draw(7, "varied", {"split_ids": "yot"})["split_ids"] == "yot"
    with pytest.raises(ValueError, match="outcome_code has no option 'sometimes'"):
        GeneratorConfig(out_dir=Path("x"), conventions_override={"outcome_code": "sometimes"})


def _evidence(out: Path) -> list[dict[str, str]]:
    with open(_months(out)[-1] / "practitioner_evidence.csv", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_varied_evidence_reads_by_kind_and_domain(county: Path, varied: Path) -> None:
    base = {r["evidence_id"]: r for r in _evidence(county)}
    rows = _evidence(varied)
    assert {r["evidence_id"] for r in rows} <= set(base)
    star_names = {v.casefold() for vs in names_data()["star_domains"].values() for v in vs}
    services = {n.casefold() for ns in names_data()["services"].values() for n in ns}
    norm = {re.sub(r"[^a-z0-9]", "", n.replace("&", "and")) for n in services}
    family_level = 0
    for r in rows:
        b = base[r["evidence_id"]]
        # statements keep their code; nothing else carries one (statements_only)
        assert r["outcome_code"] == (b["outcome_code"] if r["kind"] == "professional_statement"
                                     else ""), r
        if r["kind"] == "family_star":
            assert r["domain"].casefold() in star_names or r["domain"] == str(
                STAR_DOMAINS.index(b["domain"]) + 1), r
            assert r["person_ref"] in ("", b["person_ref"])
            family_level += r["person_ref"] == "" and b["person_ref"] != ""
        elif r["kind"] in ("service_engagement", "programme_completed"):
            key = re.sub(r"[^a-z0-9]", "", r["domain"].casefold().replace("&", "and"))
            assert key in norm, r
            if r["kind"] == "programme_completed" and r["end_date"]:
                assert r["start_date"] == r["end_date"] == b["end_date"]
    assert family_level, "some Family Star assessments written at family level"


def test_split_ids_keep_one_true_person(varied: Path) -> None:
    with open(varied / "_truth/records.csv", encoding="utf-8") as fh:
        truth = {(r["file"], r["record_key"]): r["true_person_id"] for r in csv.DictReader(fh)}
    for fname, key, id_col in (("social_care_episodes.csv", "episode_id", "child_id"),
                               ("yot_offences.csv", "offence_id", "yot_person_id")):
        ids_of: dict[str, set[str]] = {}
        for month in _months(varied):
            if not (month / fname).exists():
                continue
            with open(month / fname, encoding="utf-8-sig") as fh:
                for r in csv.DictReader(fh):
                    person = truth.get((fname, r[key]))
                    if person:
                        ids_of.setdefault(person, set()).add(r[id_col])
        split = [p for p, ids in ids_of.items() if len(ids) > 1]
        # (this small county's young offenders may all have stopped before attachment)
        assert split or fname == "yot_offences.csv", fname
        owners = [p for ids in ids_of.values() for p in ids]
        assert len(owners) == len(set(owners)), "a source id never names two people"


def test_redelivered_snapshots_are_byte_identical(varied: Path) -> None:
    months = _months(varied)
    again = 0
    for prev, month in zip(months, months[1:], strict=False):
        mm = int(month.name[5:])
        for name, due in (("school_attendance.csv", (1, 5, 9)), ("dwp_benefits.csv",
                                                                  (3, 6, 9, 12))):
            if (month / name).exists() and mm not in due:
                assert (month / name).read_bytes() == (prev / name).read_bytes()
                again += 1
    assert again
