"""Evidence read by what it is: rules/evidence_vocabulary.yaml.

A practitioner evidence row with no outcome_code supports an outcome when its
kind, or the service or programme its domain names, says what it is; Family
Star domains are read by number or name; rows that match nothing are listed in
marts.unmatched_evidence; the audit trail says which route matched; a bad
vocabulary file stops the run naming the file and the entry.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from test_rules_fixtures import World

from rules.engine import check_rule_files, evaluate_outcomes, load_plan, plan_codes
from rules.models import RuleFileError
from rules.vocabulary import (
    VOCABULARY_PATH,
    check_against_plan,
    load_vocabulary,
    normalise,
)

ATTACHED = "2023-06-01"
AS_OF = "2024-06-30"


def _world(*indicators: str, families: tuple[str, ...] = ("F1", "F2")) -> World:
    w = World()
    for fid in families:
        w.family(fid, ATTACHED, members=((f"{fid}P", "parent_carer", "1985-01-01"),
                                         (f"{fid}C", "child", "2008-05-05")))
        for ind in indicators:
            w.problem(fid, ind, f"{fid}P")
    return w


def _status(w: World, plan: str, fid: str, ind: str) -> str:
    """The problem's status; the world is evaluated once per plan (facts are set first)."""
    if getattr(w, "ran_plan", None) != plan:
        w.run(plan, AS_OF)
        w.ran_plan = plan  # type: ignore[attr-defined]
    return w.con.execute("SELECT status FROM marts.problem_status WHERE family_id = ? "
                         "AND indicator = ?", [fid, ind]).fetchone()[0]


def test_a_service_named_without_outcome_code_shows_mental_health_engagement() -> None:
    w = _world("6A", families=("F1", "F2", "F3", "F4"))
    # held-out data: the engagement row names the service, only statements carry codes
    w.evidence("F1", "service_engagement", "2023-07-01", domain="Mental Health Service")
    w.evidence("F2", "service_engagement", "2023-07-01", domain="drug and alcohol service")
    w.evidence("F3", "service_engagement", "2023-07-01", person_ref="F3C",
               domain="  CAMHS - Community Mental-Health Team (North) ")
    w.evidence("F4", "service_engagement", "2023-07-01", "2023-10-01",
               domain="Talking Therapies")  # 13 weeks, not the plan's 6 months
    assert _status(w, "thurrock", "F1", "6A") == "achieved"
    assert _status(w, "thurrock", "F2", "6A") == "not_achieved"  # substance misuse, not 6A
    assert _status(w, "thurrock", "F3", "6A") == "achieved"      # any member, normalised
    assert _status(w, "thurrock", "F4", "6A") == "not_achieved"
    assert _status(w, "cumbria", "F1", "6A") == "achieved"
    assert _status(w, "cumbria", "F2", "6A") == "not_achieved"


def test_substance_misuse_services_by_their_names() -> None:
    w = _world("6B", families=("F1", "F2", "F3"))
    w.evidence("F1", "service_engagement", "2023-07-01", domain="Change, Grow, Live")
    w.evidence("F2", "service_engagement", "2023-07-01", domain="We Are With You")
    w.evidence("F3", "service_engagement", "2023-07-01", domain="Mind")
    for fid, want in (("F1", "achieved"), ("F2", "achieved"), ("F3", "not_achieved")):
        assert _status(w, "thurrock", fid, "6B") == want, fid


def test_domestic_abuse_programme_and_family_star_name_at_family_level() -> None:
    """Central Bedfordshire 5A: support AND Family Star 'Keeping your children safe'
    AND fewer incidents, read from rows with no outcome_code, the star family-level."""
    w = _world("5A")
    for fid in ("F1", "F2"):
        w.incident(fid, "2022-12-01", "DOMESTIC", domestic=True)
        w.incident(fid, "2023-03-01", "DOMESTIC", domestic=True)
        for day in ("2023-09-01", "2024-01-10"):
            w.evidence(fid, "family_star", day, domain="Keeping Your Children Safe", score=8)
    w.evidence("F1", "programme_completed", "2023-07-01", "2023-10-01",
               domain="Freedom programme")
    w.evidence("F2", "programme_completed", "2023-07-01", "2023-10-01",
               domain="Family key worker")
    assert _status(w, "central_bedfordshire", "F1", "5A") == "achieved"
    assert _status(w, "central_bedfordshire", "F2", "5A") == "not_achieved"


def test_family_star_domain_by_number_or_name() -> None:
    w = _world("6A", families=("F1", "F2", "F3"))
    for fid, dom in (("F1", "2"), ("F2", "your well-being"), ("F3", "Your routine")):
        for day in ("2023-09-01", "2024-01-10"):
            w.evidence(fid, "family_star", day, domain=dom, score=7)
    assert _status(w, "central_bedfordshire", "F1", "6A") == "achieved"
    assert _status(w, "central_bedfordshire", "F2", "6A") == "achieved"
    assert _status(w, "central_bedfordshire", "F3", "6A") == "not_achieved"
    stars = dict(w.con.execute(
        "SELECT family_id, any_value(star_domain) FROM intermediate.int_rules_practitioner_evidence"
        " GROUP BY family_id").fetchall())
    assert stars == {"F1": 2, "F2": 2, "F3": 8}  # 'Your routine' holds 'routine': domain 8


def test_kind_alone_says_what_it_is_and_a_code_still_wins() -> None:
    w = _world("4E", "6A")
    w.evidence("F1", "debt_plan", "2023-07-01", domain="Agreed with creditors")  # no code
    w.evidence("F2", "service_engagement", "2023-07-01", domain="Mental Health Service",
               outcome_code="6.2")  # coded for substance misuse: the code is read, not the name
    w.evidence("F2", "professional_statement", "2023-07-01", outcome_code="6.1")
    assert _status(w, "thurrock", "F1", "4E") == "achieved"
    assert _status(w, "thurrock", "F2", "6A") == "not_achieved"


def test_route_in_the_audit_trail_and_unmatched_rows_listed() -> None:
    w = _world("6A")
    w.evidence("F1", "service_engagement", "2023-07-01", domain="Mental Health Service")
    w.evidence("F2", "service_engagement", "2023-07-01", domain="Mental Health Service",
               outcome_code="6.1")
    w.evidence("F1", "service_engagement", "2023-07-01", domain="Family key worker")
    w.evidence("F2", "service_engagement", "2023-07-01", domain="Mental Health Service",
               outcome_code="MH")
    w.evidence("F2", "professional_statement", "2023-07-01", domain="Doing well")
    w.run("thurrock", AS_OF)
    details = dict(w.con.execute(
        "SELECT family_id, string_agg(detail, ' | ') FROM marts.outcome_evidence "
        "WHERE outcome_id = '6.1' GROUP BY family_id").fetchall())
    assert "(service named 'Mental Health Service')" in details["F1"]
    assert "(outcome_code 6.1)" in details["F2"]
    unmatched = w.con.execute(
        "SELECT family_id, kind, domain, outcome_code, reason FROM marts.unmatched_evidence "
        "ORDER BY family_id, kind").fetchall()
    assert [(f, k, dom) for f, k, dom, _c, _r in unmatched] == [
        ("F1", "service_engagement", "Family key worker"),
        ("F2", "professional_statement", "Doing well"),
    ]
    assert "matches no vocabulary entry" in unmatched[0][4]
    # a code of no line of the plan is no code: the service name is read instead
    routes = w.con.execute(
        "SELECT route FROM intermediate.int_rules_practitioner_evidence "
        "WHERE outcome_code = 'MH'").fetchall()
    assert routes == [("service named 'Mental Health Service'",)]


def test_normalisation_is_one_definition_for_both_sides() -> None:
    got = normalise(["Women's Aid", "WOMENS   aid", "Home & Money", "well-being", "  X/Y  "])
    assert got == ["womens aid", "womens aid", "home and money", "well being", "x y"]


def _bad_vocab(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(VOCABULARY_PATH.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "evidence_vocabulary.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["services"][0].update(colour="red"),
     r"services entry mental_health: colour: Extra inputs"),
    (lambda r: r["services"][1]["names"].append("CAMHS"),
     r"services entry substance_misuse: name 'CAMHS' is also a name of mental_health"),
    (lambda r: r["services"][0].update(kinds=["family_star"]),
     r"services entry mental_health: kinds"),
    (lambda r: r["family_star"].pop(), r"family_star must list domains 1 to 10"),
    (lambda r: r["kinds"].update(debt_plans={"problems": [4]}), r"kinds entry debt_plans"),
])
def test_a_bad_vocabulary_names_the_file_and_the_entry(tmp_path: Path, change,
                                                       message: str) -> None:
    path = _bad_vocab(tmp_path, change)
    with pytest.raises(RuleFileError, match=message) as err:
        load_vocabulary(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_vocabulary_codes_must_be_the_plans_own(tmp_path: Path) -> None:
    path = _bad_vocab(tmp_path, lambda r: r["services"][0]["plans"].update(thurrock=["6Z"]))
    vocab = load_vocabulary(path)
    with pytest.raises(RuleFileError, match=r"services.mental_health: plans.thurrock names"):
        check_against_plan(vocab, "thurrock", plan_codes(load_plan("thurrock")), str(path))
    for plan in ("countywide", "thurrock", "cumbria", "bath_ne_somerset",
                 "central_bedfordshire"):
        check_rule_files(plan)  # the shipped vocabulary agrees with every plan


def test_a_bad_vocabulary_stops_before_anything_is_built(tmp_path: Path) -> None:
    path = _bad_vocab(tmp_path, lambda r: r["services"][0].update(colour="red"))
    w = _world("6A")
    with pytest.raises(RuleFileError, match="evidence_vocabulary.yaml: services entry") as err:
        evaluate_outcomes(w.con, "thurrock", date(2024, 6, 30), vocabulary=path)
    # met by a run, it is a fatal fault: one line naming the file, the warehouse kept
    from famlink.ingest.reading import FatalExtractError

    assert isinstance(err.value, FatalExtractError) and err.value.path == path
    assert err.value.fault.startswith("services entry mental_health: colour")
    built = w.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name IN "
                          "('intermediate', 'marts')").fetchone()[0]
    assert built == 0


def test_audit_pack_names_the_route_and_lists_unmatched_rows() -> None:
    from famlink.claims.explain import build_pack

    w = _world("6A")
    w.evidence("F1", "service_engagement", "2023-07-01", domain="Mental Health Service")
    w.evidence("F1", "service_engagement", "2023-07-01", domain="Family key worker")
    w.deliveries("2023-01", "2024-06")
    w.run("thurrock", AS_OF)
    pack = build_pack(w.con, "F1", date(2024, 6, 30))
    details = [e["detail"] for p in pack.problems for o in p.outcomes for e in o.evidence]
    assert any("(service named 'Mental Health Service')" in x for x in details)
    assert any("'Family key worker'" in n and "supports no outcome" in n for n in pack.notes)
