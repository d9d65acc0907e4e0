"""Doubt holds the claim: a refused re-referral under a second child_id holds the family.

A real drop (countywide plan): family FAM1's child Gordon has a social-care
record under child_id SC-1; a second record, "Gordy", same DOB and postcode,
under child_id SC-2, is a CP plan starting after attachment. The twin guard
refuses the pair (same DOB, forenames that are not one person's), so the
linkage leaves it unlinked and the family's 3A outcome ("not stepped up to CIN
or CP") is achieved: without the hold, FAM1 would be claimed.
"""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import write_delivery
from typer.testing import CliRunner

from famlink.cli import app
from famlink.pipeline import RunRequest

runner = CliRunner()
PLAN = "countywide"
MONTH = "2024-06"
AS_OF = date(2024, 6, 30)


def member(ref: str, fam: str, role: str, first: str, last: str, dob: str, **kw: str) -> dict:
    return {"person_ref": ref, "family_id": fam, "role": role, "first_name": first,
            "last_name": last, "dob": dob, **kw}


def write_drop(drop: Path) -> None:
    """Two families, each due an SSP claim (1A and 3A achieved by practitioner
    evidence, no CIN/CP step-up on record). Each has a doubtful record refused by
    the twin guard: FAM1's "Gordy" is a CP plan after attachment (it contradicts
    3A), FAM2's "Sunny" an early-help episode (it contradicts nothing)."""
    families, members, addresses, problems, evidence, episodes = [], [], [], [], [], []
    for fam, (mother, child, dob, postcode, nhs) in {
        "FAM1": ("Sarah", "Gordon", "14/05/2012", "SS14 1AA", "9434765919"),
        "FAM2": ("Priya", "Anil", "02/09/2011", "RM17 5AA", "9434765870"),
    }.items():
        last = "Bell" if fam == "FAM1" else "Shah"
        families.append({"family_id": fam, "attached_on": "01/06/2023"})
        members += [member(f"{fam}-P1", fam, "parent_carer", mother, last, "03/02/1985"),
                    member(f"{fam}-P2", fam, "child", child, last, dob, nhs_number=nhs)]
        addresses.append({"family_id": fam, "address_line1": "1 High Street", "town": "Basildon",
                          "postcode": postcode, "from_date": "01/01/2020"})
        for code in ("1A", "3A"):
            problems.append({"family_id": fam, "indicator": code, "person_ref": f"{fam}-P2",
                             "identified_on": "01/06/2023"})
            evidence.append({"evidence_id": f"{fam}-{code}", "family_id": fam,
                             "person_ref": f"{fam}-P2", "kind": "professional_statement",
                             "domain": "family", "outcome_code": code[0],
                             "start_date": "01/07/2023", "recorded_by": "worker"})
        # the child's own social-care history: closed before attachment
        episodes.append({"episode_id": f"{fam}-EP1", "child_id": f"SC-{fam}", "first_name": child,
                         "last_name": last, "dob": dob, "sex": "M", "nhs_number": nhs,
                         "postcode": postcode, "episode_type": "CIN_PLAN",
                         "start_date": "10/01/2022", "end_date": "01/03/2023",
                         "end_reason": "CLOSED_NFA"})
    # the re-referral, recorded under a second child_id with a nickname
    episodes.append({"episode_id": "FAM1-EP2", "child_id": "SC-FAM1-B", "first_name": "Gordy",
                     "last_name": "Bell", "dob": "14/05/2012", "sex": "M",
                     "postcode": "SS14 1AA", "episode_type": "CP_PLAN",
                     "start_date": "01/02/2024"})
    episodes.append({"episode_id": "FAM2-EP2", "child_id": "SC-FAM2-B", "first_name": "Sunny",
                     "last_name": "Shah", "dob": "02/09/2011", "sex": "M",
                     "postcode": "RM17 5AA", "episode_type": "EARLY_HELP",
                     "start_date": "01/02/2024"})
    # FAM2's child in an older early-help episode under a third child_id, no identifier:
    # linked by the model alone (the audit pack shows its waterfall)
    episodes.append({"episode_id": "FAM2-EP3", "child_id": "SC-FAM2-C", "first_name": "Anil",
                     "last_name": "Shah", "dob": "02/09/2011", "sex": "M",
                     "postcode": "RM17 5AA", "episode_type": "EARLY_HELP",
                     "start_date": "01/03/2021", "end_date": "01/09/2021",
                     "end_reason": "CLOSED_NFA"})
    for file, rows in {"cohort_families.csv": families, "cohort_members.csv": members,
                       "cohort_addresses.csv": addresses, "cohort_problems.csv": problems,
                       "practitioner_evidence.csv": evidence,
                       "social_care_episodes.csv": episodes}.items():
        write_delivery(drop, MONTH, file, rows)


def monthly_run(drop: Path, warehouse: Path):
    from flows.monthly import run_monthly_local

    return run_monthly_local(RunRequest(extracts=drop, warehouse=warehouse, plan=PLAN,
                                        as_of=AS_OF))


def decisions(warehouse: Path) -> dict[str, str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return dict(con.execute(
            "SELECT family_id, decision FROM claims.assessments "
            "WHERE run_id = (SELECT max(run_id) FROM claims.runs)").fetchall())
    finally:
        con.close()


def review_list(warehouse: Path, out: Path) -> tuple[str, list[dict[str, str]]]:
    result = runner.invoke(app, ["review", "--warehouse", str(warehouse), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as fh:
        return result.output, list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def built(held_and_claimed: tuple[Path, Path]) -> tuple[Path, Path, str]:
    """The drop run once: FAM1 held, FAM2 claimed; returns (drop, warehouse, pair_id)."""
    drop, warehouse = held_and_claimed          # built once per session (conftest.py)
    output = json.loads((warehouse.parent / "done.json").read_text())["output"]
    assert "held for review: 1 families (GBP 800 held back)" in output
    assert decisions(warehouse) == {"FAM1": "held_for_review", "FAM2": "claimed"}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT new_claims, held_for_review FROM claims.runs").fetchall() == [
            (1, 1)]
        (pair_id, reason, prob), = con.execute(
            "SELECT DISTINCT pair_id, reason, match_probability FROM linkage.doubtful_links "
            "WHERE extract = 'social_care_episodes' AND record_key = 'FAM1-EP2' "
            "AND person_ref = 'FAM1-P2'").fetchall()
        claimed = [r[0] for r in con.execute("SELECT family_id FROM claims.current_claims")
                   .fetchall()]
    finally:
        con.close()
    assert reason.startswith("twin guard") and prob >= 0.9
    assert claimed == ["FAM2"]
    return drop, warehouse, pair_id


@pytest.fixture
def held(built: tuple[Path, Path, str], tmp_path: Path) -> tuple[Path, Path, str]:
    """A copy of the built warehouse for one test to change."""
    drop, warehouse, pair_id = built
    copy = tmp_path / "wh.duckdb"
    shutil.copy2(warehouse, copy)
    return drop, copy, pair_id


def test_refused_rereferral_holds_the_claim_and_is_listed(held, tmp_path: Path) -> None:
    _, warehouse, pair_id = held
    output, rows = review_list(warehouse, tmp_path / "review.csv")
    assert {(r["pair_id"], r["family_id"], r["person_ref"], r["extract"], r["record_key"],
             r["indicator"]) for r in rows} == {
        (pair_id, "FAM1", "FAM1-P2", "social_care_episodes", "FAM1-EP2", "3A")}
    assert rows[0]["status_if_same"] == "not_achieved" and rows[0]["decision"] == ""
    assert "1 families held for review (GBP 800 held back)" in output
    for personal in ("Gordy", "Gordon", "2012-05-14", "14/05/2012", "SS14"):  # ids only
        assert personal not in output
        assert personal not in (tmp_path / "review.csv").read_text(encoding="utf-8")

    # the audit pack shows the pair, the outcome it would contradict, and the return the hold
    from famlink.claims.explain import explain_family
    from famlink.claims.returns import write_return

    pack = explain_family(warehouse, "FAM1", None, None, quiet=True)
    assert pack.decision == "held_for_review"
    assert [(h["pair_id"], h["indicator"]) for h in pack.held] == [(pair_id, "3A")]
    csv_path, xlsx_path, _ = write_return(warehouse, AS_OF, tmp_path / "return")
    assert "FAM1" not in csv_path.read_text(encoding="utf-8")    # the CSV: claim rows only
    from openpyxl import load_workbook

    held_sheet = load_workbook(xlsx_path)["Held for review"]
    assert [c.value for c in held_sheet[2]][:3] == ["FAM1", f"3A ({pair_id})", 800]


def test_decided_same_links_the_record_and_no_claim(held, tmp_path: Path) -> None:
    drop, warehouse, pair_id = held
    result = runner.invoke(app, ["review", "decide", pair_id, "--same", "--warehouse",
                                 str(warehouse), "--by", "reviewer.one",
                                 "--reason", "same child: nickname, DOB and address agree"])
    assert result.exit_code == 0, result.output
    summary = monthly_run(drop, warehouse)
    assert summary.linkage.reviewed_same_edges >= 1
    assert summary.claims.new_claims == 0 and summary.claims.held_for_review == 0
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        link = con.execute("SELECT person_ref, match_method FROM linkage.record_links "
                           "WHERE extract = 'social_care_episodes' AND record_key = 'FAM1-EP2'"
                           ).fetchone()
        status = con.execute("SELECT status FROM marts.problem_status WHERE family_id = 'FAM1' "
                             "AND indicator = '3A'").fetchone()
        who = con.execute("SELECT decision, decided_by FROM review.decisions").fetchall()
    finally:
        con.close()
    assert link == ("FAM1-P2", "review_same")
    assert status == ("not_achieved",)
    assert who == [("same", "reviewer.one")]
    assert decisions(warehouse) == {"FAM1": "not_due", "FAM2": "already_claimed"}


def test_decided_different_releases_the_hold(held, tmp_path: Path) -> None:
    drop, warehouse, pair_id = held
    result = runner.invoke(app, ["review", "decide", pair_id, "--different", "--warehouse",
                                 str(warehouse), "--reason", "a cousin: other mother"])
    assert result.exit_code == 0, result.output
    summary = monthly_run(drop, warehouse)
    assert summary.claims.new_claims == 1 and summary.claims.held_for_review == 0
    assert decisions(warehouse) == {"FAM1": "claimed", "FAM2": "already_claimed"}
    _, rows = review_list(warehouse, tmp_path / "after.csv")
    assert rows == []


def test_decide_refuses_an_unknown_pair_and_leaves_the_warehouse(held) -> None:
    _, warehouse, _ = held
    before = warehouse.read_bytes()
    result = runner.invoke(app, ["review", "decide", "DL-nosuchpair", "--same", "--warehouse",
                                 str(warehouse), "--reason", "x"])
    assert result.exit_code == 2 and "DL-nosuchpair" in result.output
    assert warehouse.read_bytes() == before
    result = runner.invoke(app, ["review", "decide", "DL-nosuchpair", "--warehouse",
                                 str(warehouse), "--reason", "x"])
    assert result.exit_code == 2 and "--same or --different" in result.output


def test_doubtful_record_that_contradicts_nothing_holds_nothing(held) -> None:
    # FAM2's "Sunny" is as doubtful as "Gordy", but an early-help episode is not a
    # step-up to CIN or CP: judged with it, FAM2 is still due, so FAM2 was claimed
    _, warehouse, _ = held
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        doubtful = con.execute(
            "SELECT DISTINCT reason FROM linkage.doubtful_links WHERE record_key = 'FAM2-EP2' "
            "AND person_ref = 'FAM2-P2'").fetchall()
        held_for = con.execute("SELECT DISTINCT family_id FROM claims.held_pairs").fetchall()
    finally:
        con.close()
    assert len(doubtful) == 1 and doubtful[0][0].startswith("twin guard")
    assert held_for == [("FAM1",)]
    assert decisions(warehouse)["FAM2"] == "claimed"


def test_rounds_judged_family_by_family_hold_what_the_whole_cohort_holds(held) -> None:
    # Several doubtful records in one family, over two rounds: the CP plan "Gordy" is
    # also doubtful for FAM2's child (less probable than for FAM1's, so round 2), and
    # "Sunny" also for FAM1's mother (round 2). Round 1 links Gordy to FAM1 and Sunny
    # to FAM2; round 2 links Gordy to FAM2 (a CP plan: FAM2's 3A is contradicted) and
    # Sunny to FAM1. Judging only each round's families must hold exactly what
    # judging the whole cohort holds, pair by pair.
    from famlink.claims.review import find_holds

    _, warehouse, pair_id = held
    con = duckdb.connect(str(warehouse))
    try:
        for record_key, member, family, pair in (("FAM1-EP2", "FAM2-P2", "FAM2", "DL-test-gordy2"),
                                                 ("FAM2-EP2", "FAM1-P1", "FAM1", "DL-test-sunny1")):
            con.execute(
                """INSERT INTO linkage.doubtful_links
                SELECT ?, ?, ?, extract, record_key, record_id, other_source, other_person_id,
                       match_probability - 0.01, reason, NULL
                FROM linkage.doubtful_links WHERE record_key = ? LIMIT 1""",
                [pair, member, family, record_key])
        doubtful_for = con.execute("SELECT DISTINCT person_ref FROM linkage.doubtful_links "
                                   "WHERE record_key = 'FAM1-EP2'").fetchall()
        assert {("FAM1-P2",), ("FAM2-P2",)} <= set(doubtful_for)
        fast = find_holds(con, PLAN, AS_OF, ["FAM1", "FAM2"])
        slow = find_holds(con, PLAN, AS_OF, ["FAM1", "FAM2"], whole_cohort=True)
        # the re-evaluation leaves the warehouse as it was
        assert con.execute("SELECT count(*) FROM marts.outcomes WHERE family_id = 'FAM2' "
                           "AND status = 'achieved'").fetchall()[0][0] > 0
    finally:
        con.close()
    assert fast == slow
    held_by = {(h.family_id, h.pair_id, h.indicator) for h in fast}
    assert ("FAM1", pair_id, "3A") in held_by
    assert ("FAM2", "DL-test-gordy2", "3A") in held_by
    assert {h.family_id for h in fast} == {"FAM1", "FAM2"}
