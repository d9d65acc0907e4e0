"""Practitioner evidence: what counts as showing an outcome, on both sides of each line.

- evidence recorded before attachment shows the problem, not progress on it;
- evidence with no outcome_code (or another outcome's) supports no outcome here;
- a completed programme shows the outcome from its completion (end_date);
- an EET status must still hold (countywide 4B), a short engagement that ended
  is not "managed" (countywide 5B), and the countywide 3A improvement may be
  shown by Family Star readings held for 6 months.
"""

from __future__ import annotations

from test_rules_fixtures import World

AS_OF = "2024-06-30"
ATTACHED = "2023-06-01"


def _world(*indicators: str) -> World:
    w = World()
    for fid in ("F1", "F2"):
        w.family(fid, ATTACHED, members=((f"{fid}P", "parent_carer", "1985-01-01"),
                                         (f"{fid}C", "child", "2008-05-05")))
        for ind in indicators:
            w.problem(fid, ind, f"{fid}C")
    return w


def _status(w: World, plan: str, fid: str, ind: str) -> str:
    w.run(plan, AS_OF)
    row = w.con.execute("SELECT status FROM marts.problem_status WHERE family_id = ? "
                        "AND indicator = ?", [fid, ind]).fetchall()
    return row[0][0]


def test_evidence_before_attachment_does_not_count() -> None:
    w = _world("6A")
    w.evidence("F1", "professional_statement", "2023-05-20", outcome_code="6A")  # referral
    w.evidence("F2", "professional_statement", "2023-06-01", outcome_code="6A")
    assert _status(w, "countywide", "F1", "6A") == "not_achieved"
    assert _status(w, "countywide", "F2", "6A") == "achieved"


def test_evidence_without_matching_outcome_code_does_not_count() -> None:
    w = _world("6A")
    w.evidence("F1", "service_engagement", "2023-07-01")  # key worker: no outcome named
    w.evidence("F1", "service_engagement", "2023-07-01", outcome_code="6B")
    w.evidence("F2", "service_engagement", "2023-07-01", outcome_code="6a")
    assert _status(w, "countywide", "F1", "6A") == "not_achieved"
    assert _status(w, "countywide", "F2", "6A") == "achieved"


def test_programme_shows_the_outcome_from_completion() -> None:
    w = _world("4A")
    # 4A progress to work: a completed programme. F1's has not finished by the as-of.
    w.evidence("F1", "programme_completed", "2024-01-10", "2024-08-01", outcome_code="4A")
    w.evidence("F2", "programme_completed", "2024-01-10", "2024-06-30", outcome_code="4A")
    assert _status(w, "countywide", "F1", "4A") == "not_yet_sustained"
    assert _status(w, "countywide", "F2", "4A") == "achieved"


def test_countywide_eet_must_still_hold() -> None:
    w = _world("4B")
    w.evidence("F1", "neet_status", "2023-07-01", "2023-10-01", domain="EET", outcome_code="4B")
    w.evidence("F1", "neet_status", "2023-10-02", domain="NEET", outcome_code="4B")
    w.evidence("F2", "neet_status", "2024-03-30", domain="EET", outcome_code="4B")  # 13 weeks
    assert _status(w, "countywide", "F1", "4B") == "not_achieved"
    assert _status(w, "countywide", "F2", "4B") == "achieved"
    w2 = _world("4B")  # EET begun 12 weeks before the as-of: not yet sustained
    w2.evidence("F1", "neet_status", "2024-04-07", domain="EET", outcome_code="4B")
    assert _status(w2, "countywide", "F1", "4B") == "not_yet_sustained"


def test_countywide_conflict_managed_needs_13_weeks_of_engagement() -> None:
    w = _world("5B")
    w.evidence("F1", "service_engagement", "2023-07-01", "2023-09-28", outcome_code="5B")  # 89d
    w.evidence("F2", "service_engagement", "2023-07-01", "2023-09-30", outcome_code="5B")  # 91d
    assert _status(w, "countywide", "F1", "5B") == "not_achieved"
    assert _status(w, "countywide", "F2", "5B") == "achieved"


def test_countywide_family_situation_improved_by_family_star() -> None:
    w = _world("3A")
    for fid in ("F1", "F2"):  # early help before attachment; no step-up since
        w.episode(f"{fid}C", "EARLY_HELP", "2023-01-01", "2023-05-01", "CLOSED_NFA")
    for fid, first in (("F1", "2024-01-01"), ("F2", "2023-12-30")):
        for day in (first, "2024-05-01"):
            for dom in range(1, 7):
                w.evidence(fid, "family_star", day, domain=str(dom), score=7,
                           outcome_code="3A")
    # F1's readings have held 6 months only from 2024-07-01: not yet; F2's have.
    assert _status(w, "countywide", "F1", "3A") == "not_yet_sustained"
    assert _status(w, "countywide", "F2", "3A") == "achieved"


def test_a_statement_dated_with_an_end_date_equal_to_its_start_still_stands() -> None:
    """Bath 6a: a statement that must stand 6 months. Some case systems close a
    statement on its own date: a point in time, not a statement withdrawn. An
    engagement closed on the day it began has not lasted."""
    w = _world("6A")
    w.evidence("F1", "professional_statement", "2023-07-01", "2023-07-01", outcome_code="6A")
    w.evidence("F2", "professional_statement", "2023-07-01", "2023-08-01", outcome_code="6A")
    assert _status(w, "bath_ne_somerset", "F1", "6A") == "achieved"
    assert _status(w, "bath_ne_somerset", "F2", "6A") == "not_achieved"
