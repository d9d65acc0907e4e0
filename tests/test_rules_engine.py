"""Engine behaviour beyond single outcome lines: validation errors, data that
arrived late or after the as-of date, unverified DWP records, evidence
lineage, collapsing of interchangeable outcomes, and determinism."""

from __future__ import annotations

import pytest
from test_rules_fixtures import World, d

from rules.engine import evaluate_outcomes, load_plan
from rules.models import RuleFileError, parse_plan


def _thurrock_family(w: World) -> None:
    w.family("F1", "2023-01-15", members=(("P1", "parent_carer", "1985-01-01"),
                                          ("C1", "child", "2010-05-05")))
    w.problem("F1", "1A", "C1")
    w.problem("F1", "3E", "C1")
    w.problem("F1", "4A", "P1")
    for when in ("2022-03-01", "2022-06-01", "2022-09-01"):
        w.offence("C1", when)
    w.episode("C1", "CP_PLAN", "2022-10-01", "2023-06-01")
    w.benefit("P1", "JSA", "2021-01-01", "2023-03-31")
    w.job("P1", "2023-04-01")


def test_bad_rule_file_names_file_and_rule() -> None:
    raw = {"plan": "x", "source": "x", "indicators": {"1A": "a"}, "rules": [
        {"id": "1.1", "text": "t", "applies_to": ["1A"], "kind": "count_reduction",
         "measures": ["proven_offences"], "min_reduction": 0.3, "typo": 1}],
        "ce": {"text": "t", "routes": [{"id": "r", "trigger": "spell_end",
                                          "from_benefits": ["JSA"], "min_weeks": 13}]}}
    with pytest.raises(RuleFileError, match=r"rules/x.yaml: rule 1.1: .*typo"):
        parse_plan(raw, "rules/x.yaml")
    raw["rules"][0].pop("typo")
    raw["rules"][0]["measures"] = ["nonsense"]
    with pytest.raises(RuleFileError, match="rule 1.1: .*unknown measure"):
        parse_plan(raw, "rules/x.yaml")
    with pytest.raises(RuleFileError, match="no rule file"):
        load_plan("atlantis")


def test_lineage_collapse_and_ce() -> None:
    w = World()
    _thurrock_family(w)
    got = w.run("thurrock", "2024-06-30")
    assert got[("F1", "1A", "1.1A")] == ("achieved", d("2023-07-15"))
    assert got[("F1", "3E", "3.4")] == ("achieved", d("2023-12-01"))
    status = dict(w.con.execute(
        "SELECT indicator, status || ':' || outcome_id FROM marts.problem_status").fetchall())
    assert status["3E"] in ("achieved:3.1", "achieved:3.4")
    ce = w.con.execute("SELECT person_ref, route, qualifies_on, status FROM marts.ce_status"
                       ).fetchall()
    assert ce == [("P1", "off_JSA_26w", d("2023-09-29"), "achieved")]
    ev = w.con.execute(
        "SELECT DISTINCT extract, delivery_id, month, match_method, match_probability "
        "FROM marts.outcome_evidence WHERE outcome_id = '4.1' ORDER BY extract").fetchall()
    assert [e[0] for e in ev] == ["dwp_benefits", "dwp_employment"]
    assert all(e[1] == 1 and e[2] == "2024-01" and e[4] == 0.99 for e in ev)


def test_events_after_as_of_and_unverified_dwp_are_ignored() -> None:
    w = World()
    _thurrock_family(w)
    # an offence after the as-of date must not undo the reduction
    w.offence("C1", "2024-07-10")
    # DWP returned someone else's open JSA spell under P1's match_ref: not verified
    w.benefit("P1", "JSA", "2023-05-01", linked_to=None)
    got = w.run("thurrock", "2024-06-30")
    assert got[("F1", "1A", "1.1A")][0] == "achieved"
    assert got[("F1", "4A", "4.1")][0] == "achieved"
    # too early: six months after attachment have not passed
    got = w.run("thurrock", "2023-05-31")
    assert got[("F1", "1A", "1.1A")][0] == "not_yet_sustained"
    assert got[("F1", "4A", "4.1")][0] == "not_yet_sustained"


def test_attendance_uses_latest_arrived_terms() -> None:
    w = World()
    w.family("F2", "2023-01-15", members=(("C2", "child", "2012-01-01"),))
    w.problem("F2", "2A", "C2")
    w.terms("C2", ("2022", "SUM"), [0.95, 0.95, 0.95])  # SUM23, AUT23, SPR24
    assert w.status("thurrock", "2023-12-31", "F2", "2A", "2.1") == "not_yet_sustained"
    assert w.status("thurrock", "2024-06-30", "F2", "2A", "2.1") == "achieved"
    w.attendance("C2", "2023/24", "SUM", 0.70)  # a bad later term arrives
    assert w.status("thurrock", "2024-09-30", "F2", "2A", "2.1") == "not_achieved"


def test_deterministic() -> None:
    w = World()
    _thurrock_family(w)
    tables = ("outcomes", "problem_status", "outcome_evidence", "ce_status", "family_problems")
    evaluate_outcomes(w.con, "thurrock", d("2024-06-30"))
    first = {t: w.con.execute(f"SELECT * FROM marts.{t}").fetchall() for t in tables}
    summary = evaluate_outcomes(w.con, "thurrock", d("2024-06-30"))
    second = {t: w.con.execute(f"SELECT * FROM marts.{t}").fetchall() for t in tables}
    assert first == second
    assert summary.families == 1 and summary.problems == 3
    assert summary.problem_status.get("achieved") == 3
