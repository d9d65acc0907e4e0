"""Claims: eligibility, SSP versus CE, sustainment boundaries, the ledger, the return."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook
from test_claims_support import PLAN, d, new_warehouse

from famlink.claims import (
    PAYMENT_GBP,
    WithdrawalError,
    record_due_claims,
    withdraw_claim,
    write_claims_csv,
    write_return,
)
from famlink.claims.eligibility import assess

AS_OF = "2024-06-30"


def due(con: duckdb.DuckDBPyConnection, as_of: str = AS_OF) -> dict[str, tuple]:
    return {a.family_id: (a.claim_type, a.achieved_on, a.problems)
            for a in assess(con, PLAN, d(as_of)) if a.claim_type}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def evaluate(wb, formula: str) -> float:
    """The Summary's formulas (SUM, COUNTA, COUNTIF over one range) computed as a spreadsheet
    would, so a test can check they add up to the totals CSV."""
    import re

    m = re.fullmatch(r"=(SUM|COUNTA|COUNTIF)\((?:'([^']+)'|(\w+))!([A-Z]+\d+:[A-Z]+\d+)"
                     r"(?:,\"([^\"]*)\")?\)", formula)
    assert m, formula
    fn, quoted, bare, ref, crit = m.groups()
    values = [c.value for row in wb[quoted or bare][ref] for c in row]
    if fn == "SUM":
        return sum(v for v in values if isinstance(v, (int, float)))
    if fn == "COUNTA":
        return sum(1 for v in values if v not in (None, ""))
    return sum(1 for v in values if v == crit)


@pytest.fixture
def wh(tmp_path: Path):
    con, marts = new_warehouse(tmp_path / "wh.duckdb")
    yield tmp_path / "wh.duckdb", con, marts
    con.close()


# ------------------------------------------------------------------ eligibility

def test_eligibility_counts_distinct_national_problems_at_attachment(wh) -> None:
    _, con, m = wh
    m.family("TWO", "2023-01-10", {"1A": None, "5A": None})
    m.family("SAMEPROB", "2023-01-10", {"6A": None, "6B": None})          # one problem twice
    m.family("LOCAL7", "2023-01-10", {"1A": None, "7B": None})            # 7 is not national
    for fam, codes in {"TWO": ["1A", "5A"], "SAMEPROB": ["6A", "6B"],
                       "LOCAL7": ["1A", "7B"]}.items():
        m.achieved(AS_OF, fam, {c: "2024-01-31" for c in codes})
    by_family = {a.family_id: a for a in assess(con, PLAN, d(AS_OF))}
    assert by_family["TWO"].eligible and by_family["TWO"].national_problems == 2
    assert not by_family["SAMEPROB"].eligible
    assert not by_family["LOCAL7"].eligible
    assert set(due(con)) == {"TWO"}
    assert "Not eligible" in by_family["SAMEPROB"].reason()


def test_family_attached_after_as_of_is_not_eligible(wh) -> None:
    _, con, m = wh
    m.family("F", "2024-07-15", {"1A": None, "2A": None})
    m.achieved(AS_OF, "F", {"1A": "2024-06-01", "2A": "2024-06-01"})
    assert due(con) == {}


# ------------------------------------------------------------------ SSP

def test_ssp_needs_every_indicator_achieved(wh) -> None:
    _, con, m = wh
    m.family("ALL", "2023-01-10", {"1A": None, "2A": None, "5A": None, "5B": None})
    m.achieved(AS_OF, "ALL", {"1A": "2023-11-30", "2A": "2024-04-20", "5A": "2024-02-01",
                              "5B": "2024-03-01"})
    m.family("ONEOPEN", "2023-01-10", {"1A": None, "2A": None, "5A": None, "5B": None})
    m.achieved(AS_OF, "ONEOPEN", {"1A": "2023-11-30", "2A": "2024-04-20", "5A": "2024-02-01"})
    m.status(AS_OF, "ONEOPEN", "5B", "not_yet_sustained")
    m.family("NOROW", "2023-01-10", {"1A": None, "2A": None})
    m.achieved(AS_OF, "NOROW", {"1A": "2023-11-30"})                      # 2A has no status
    m.family("INSUFF", "2023-01-10", {"1A": None, "2A": None})
    m.achieved(AS_OF, "INSUFF", {"1A": "2023-11-30"})
    m.status(AS_OF, "INSUFF", "2A", "insufficient_data")
    assert due(con) == {"ALL": ("SSP", d("2024-04-20"), "1;2;5")}
    blocked = {a.family_id: a for a in assess(con, PLAN, d(AS_OF))}
    assert blocked["ONEOPEN"].blocking == ["5B=not_yet_sustained"]
    assert blocked["NOROW"].blocking == ["2A=no_status"]


def test_problems_listed_in_ascending_numeric_order(wh) -> None:
    _, con, m = wh
    m.family("F", "2023-01-10", {"6A": None, "2A": None, "1A": None})
    m.achieved(AS_OF, "F", {"6A": "2024-01-01", "2A": "2024-01-02", "1A": "2024-01-03"})
    assert due(con)["F"] == ("SSP", d("2024-01-03"), "1;2;6")


def test_problem_found_later_is_not_part_of_the_claim_and_does_not_hold_it_back() -> None:
    """From staging to the decision: one reading, applied once by the rules engine.

    Both families have 1A and 5A at attachment, shown by statements after it; F2
    also has 6A identified 200 days after attachment (beyond the plan's grace)
    and never achieved. It is not part of F2's claim and does not hold it back.
    F1's 6A is identified within the grace: it is part of the claim and, not
    achieved, holds SSP back.
    """
    from test_rules_fixtures import World

    w = World()
    for fid in ("F1", "F2"):
        w.family(fid, "2023-06-01", members=((f"{fid}P", "parent_carer", "1985-01-01"),))
        for code in ("1A", "5A"):
            w.problem(fid, code, f"{fid}P")
            w.evidence(fid, "professional_statement", "2023-07-01", outcome_code=code)
    w.problem("F1", "6A", "F1P", identified_on="2023-08-01")   # 61 days: within the grace
    w.problem("F2", "6A", "F2P", identified_on="2023-12-18")   # 200 days: found later
    w.run(PLAN, AS_OF)
    by_family = {a.family_id: a for a in assess(w.con, PLAN, d(AS_OF))}
    assert by_family["F1"].claim_type is None and by_family["F1"].blocking == ["6A=not_achieved"]
    assert by_family["F2"].claim_type == "SSP" and by_family["F2"].problems == "1;5"
    listed = w.con.execute("SELECT family_id, indicator FROM marts.family_problems "
                           "WHERE indicator = '6A'").fetchall()
    assert listed == [("F1", "6A")]


def test_only_the_runs_plan_and_as_of_count(wh) -> None:
    _, con, m = wh
    m.family("F", "2023-01-10", {"1A": None, "2A": None})
    m.achieved("2024-05-31", "F", {"1A": "2024-01-01", "2A": "2024-02-01"})  # other run
    assert due(con) == {}
    m.plan = "thurrock"
    m.achieved(AS_OF, "F", {"1A": "2024-01-01", "2A": "2024-02-01"})         # other plan
    assert due(con) == {}


# ------------------------------------------------------------------ sustainment boundaries

@pytest.mark.parametrize(("achieved_on", "is_due"), [
    ("2024-06-29", True),
    ("2024-06-30", True),        # achieved on the as-of day itself: due
    ("2024-07-01", False),       # achieved after the as-of: not yet
    ("2023-01-09", False),       # before attachment: not progress made with the family
    (None, False),               # 'achieved' without a date cannot be dated: not claimed
])
def test_sustainment_boundaries(wh, achieved_on: str | None, is_due: bool) -> None:
    _, con, m = wh
    m.family("F", "2023-01-10", {"1A": None, "2A": None})
    m.achieved(AS_OF, "F", {"1A": "2023-06-01"})
    m.status(AS_OF, "F", "2A", "achieved", achieved_on)
    assert ("F" in due(con)) is is_due
    if is_due:
        assert due(con)["F"][1] == d(achieved_on or "")


@pytest.mark.parametrize(("qualifies_on", "off_benefit_on", "is_due"), [
    ("2024-06-30", "2023-12-31", True),
    ("2024-07-01", "2024-01-01", False),   # qualifies after the as-of
    ("2023-01-09", "2022-07-01", False),   # qualified before attachment
    ("2023-09-01", "2022-12-01", False),   # moved off benefits before attachment
])
def test_ce_boundaries(wh, qualifies_on: str, off_benefit_on: str, is_due: bool) -> None:
    _, con, m = wh
    m.family("F", "2023-01-10", {"1A": None, "4A": None})
    m.ce(AS_OF, "F", qualifies_on, off_benefit_on=off_benefit_on)
    assert ("F" in due(con)) is is_due


# ------------------------------------------------------------------ CE and SSP versus CE

def test_ce_stands_alone_but_needs_eligibility(wh) -> None:
    _, con, m = wh
    m.family("CE", "2023-01-10", {"1A": None, "4A": None, "6A": None})
    m.status(AS_OF, "CE", "1A", "not_achieved")
    m.ce(AS_OF, "CE", "2024-03-15", off_benefit_on="2023-09-15")
    m.ce(AS_OF, "CE", "2024-05-01", person="P2")          # a second adult, later: earliest wins
    m.family("NOTELIG", "2023-01-10", {"4A": None})
    m.ce(AS_OF, "NOTELIG", "2024-03-15")
    m.family("NOTYET", "2023-01-10", {"1A": None, "4A": None})
    m.ce(AS_OF, "NOTYET", None, status="not_yet_sustained")
    assert due(con) == {"CE": ("CE", d("2024-03-15"), "")}


@pytest.mark.parametrize(("ssp_on", "ce_on", "expected"), [
    ("2024-02-01", "2024-03-01", "SSP"),
    ("2024-03-01", "2024-02-01", "CE"),
    ("2024-03-01", "2024-03-01", "SSP"),    # a tie goes to SSP
])
def test_both_due_claims_the_earlier(wh, ssp_on: str, ce_on: str, expected: str) -> None:
    _, con, m = wh
    m.family("F", "2023-01-10", {"1A": None, "4A": None})
    m.achieved(AS_OF, "F", {"1A": "2023-12-01", "4A": ssp_on})
    m.ce(AS_OF, "F", ce_on)
    claim_type, achieved_on, problems = due(con)["F"]
    assert claim_type == expected
    assert achieved_on == d(ssp_on if expected == "SSP" else ce_on)
    assert problems == ("1;4" if expected == "SSP" else "")


# ------------------------------------------------------------------ the ledger

def test_one_claim_per_family_across_many_runs(wh) -> None:
    path, con, m = wh
    m.family("A", "2023-01-10", {"1A": None, "2A": None})
    m.family("B", "2023-01-10", {"1A": None, "4A": None})
    m.family("C", "2023-01-10", {"3A": None, "5A": None})
    months = ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"]
    new_counts = []
    for i, as_of in enumerate(months):
        m.clear_run()
        # A is due from the first run on, B by CE from the third, C never
        m.achieved(as_of, "A", {"1A": "2023-11-01", "2A": "2023-12-01"})
        if i >= 2:
            m.ce(as_of, "B", "2024-03-20")
        m.status(as_of, "C", "3A", "not_achieved")
        first = record_due_claims(con, PLAN, d(as_of))
        again = record_due_claims(con, PLAN, d(as_of))          # a re-run at the same date
        assert again.new_claims == 0
        new_counts.append(first.new_claims)
    assert new_counts == [1, 0, 1, 0, 0]
    rows = con.execute("SELECT family_id, claim_type, as_of FROM claims.ledger "
                       "ORDER BY family_id").fetchall()
    assert rows == [("A", "SSP", d("2024-01-31")), ("B", "CE", d("2024-03-31"))]
    runs = con.execute("SELECT count(*), sum(new_claims), max(already_claimed) "
                       "FROM claims.runs").fetchone()
    assert runs == (10, 2, 2)
    last = con.execute("SELECT decision FROM claims.assessments WHERE run_id = 10 "
                       "ORDER BY family_id").fetchall()
    assert [r[0] for r in last] == ["already_claimed", "already_claimed", "not_due"]
    con.close()

    out = path.parent / "claims.csv"
    assert write_claims_csv(path, d("2024-01-31"), out) == 1
    assert read_csv(out) == [{"family_id": "A", "claim_type": "SSP", "achieved_on": "2023-12-01",
                              "problems": "1;2"}]
    assert write_claims_csv(path, d("2024-03-31"), out) == 1
    assert read_csv(out)[0] == {"family_id": "B", "claim_type": "CE",
                                "achieved_on": "2024-03-20", "problems": ""}
    assert write_claims_csv(path, d("2024-05-31"), out) == 0
    assert out.read_text().strip() == "family_id,claim_type,achieved_on,problems"


def test_database_refuses_a_second_claim_for_a_family(wh) -> None:
    _, con, m = wh
    m.family("A", "2023-01-10", {"1A": None, "2A": None})
    m.achieved(AS_OF, "A", {"1A": "2023-11-01", "2A": "2023-12-01"})
    record_due_claims(con, PLAN, d(AS_OF))
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO claims.events (event_id, claim_id, family_id, event, "
                    "recorded_at) VALUES (99, 99, 'A', 'claimed', now())")


def test_empty_warehouse_still_records_a_run(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "empty.duckdb"))
    summary = record_due_claims(con, PLAN, d(AS_OF))
    assert (summary.run_id, summary.families, summary.new_claims) == (1, 0, 0)
    con.close()
    assert write_claims_csv(tmp_path / "empty.duckdb", d(AS_OF), tmp_path / "c.csv") == 0


def test_withdrawal_keeps_history_and_family_is_never_claimed_again(wh) -> None:
    path, con, m = wh
    m.family("A", "2023-01-10", {"1A": None, "2A": None})
    m.family("B", "2023-01-10", {"1A": None, "2A": None})
    for fam in ("A", "B"):
        m.achieved(AS_OF, fam, {"1A": "2023-11-01", "2A": "2023-12-01"})
    assert record_due_claims(con, PLAN, d(AS_OF)).new_claims == 2
    con.close()

    withdraw_claim(path, "A", "school confirms attendance data was wrong", "auditor.jones")
    with pytest.raises(WithdrawalError):
        withdraw_claim(path, "A", "again", "auditor.jones")
    with pytest.raises(WithdrawalError):
        withdraw_claim(path, "NOPE", "no such claim", "auditor.jones")
    with pytest.raises(WithdrawalError):
        withdraw_claim(path, "B", "  ", "auditor.jones")

    out = path.parent / "claims.csv"
    assert write_claims_csv(path, d(AS_OF), out) == 1
    assert [r["family_id"] for r in read_csv(out)] == ["B"]

    con = duckdb.connect(str(path))
    events = con.execute("SELECT family_id, event, reason, recorded_by FROM claims.events "
                         "ORDER BY event_id").fetchall()
    assert events[-1] == ("A", "withdrawn", "school confirms attendance data was wrong",
                          "auditor.jones")
    assert len(events) == 3
    assert con.execute("SELECT status FROM claims.ledger WHERE family_id = 'A'").fetchone() == (
        "withdrawn",)
    assert con.execute("SELECT family_id FROM claims.current_claims").fetchall() == [("B",)]
    # still due by the rules at a later run, but never claimed again
    m.con = con
    m.clear_run()
    m.achieved("2024-07-31", "A", {"1A": "2023-11-01", "2A": "2023-12-01"})
    summary = record_due_claims(con, PLAN, d("2024-07-31"))
    assert (summary.new_claims, summary.already_claimed) == (0, 1)
    con.close()


def test_return_has_one_row_per_claim_totals_and_the_run(wh) -> None:
    path, con, m = wh
    m.family("A", "2023-01-10", {"1A": None, "2A": None})
    m.family("B", "2023-01-10", {"1A": None, "4A": None})
    m.family("C", "2023-01-10", {"1A": None, "5A": None})
    m.achieved(AS_OF, "A", {"1A": "2023-11-01", "2A": "2023-12-01"})
    m.achieved(AS_OF, "C", {"1A": "2023-11-01", "5A": "2023-12-01"})
    m.ce(AS_OF, "B", "2024-03-20")
    summary = record_due_claims(con, PLAN, d(AS_OF))
    con.close()
    withdraw_claim(path, "C", "duplicate family record", "auditor")
    csv_path, xlsx_path, totals_path = write_return(path, d(AS_OF), path.parent / "return")
    assert totals_path.name == f"claims_return_{PLAN}_{AS_OF}_totals.csv"
    rows = read_csv(csv_path)
    assert [r["family_id"] for r in rows] == ["A", "B"]          # claim rows only: no TOTAL
    assert rows[0]["run_id"] == str(summary.run_id) and rows[0]["plan"] == PLAN
    assert rows[0]["as_of"] == AS_OF and rows[0]["payment_gbp"] == str(PAYMENT_GBP)
    assert rows[0]["problem_names"] == ("1 crime or anti-social behaviour; "
                                        "2 children not attending school regularly")
    assert list(rows[0])[-1] == "problem_names"                   # a new column goes last
    totals = {r["item"]: r["value"] for r in read_csv(totals_path)}
    assert totals["total_claimed_gbp"] == str(2 * PAYMENT_GBP) and totals["claims"] == "2"
    assert totals["claims_ssp"] == "1" and totals["claims_ce"] == "1"
    assert totals["withdrawals"] == "1" and totals["repayable_gbp"] == "0"  # never returned

    wb = load_workbook(xlsx_path)
    assert wb.sheetnames == ["Summary", "Claims", "Held for review", "Withdrawals"]
    ws = wb["Claims"]
    header = [c.value for c in ws[1]]
    assert header[3:5] == ["problems", "problem_names"]            # names beside numbers
    assert [ws.cell(row=r, column=1).value for r in (2, 3)] == ["A", "B"]
    achieved = ws.cell(row=2, column=header.index("achieved_on") + 1)
    assert isinstance(achieved.value, datetime) and achieved.is_date
    assert achieved.value.date() == d("2023-12-01")
    pay = ws.cell(row=2, column=header.index("payment_gbp") + 1)
    assert pay.value == PAYMENT_GBP and "£" in pay.number_format
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:K3"
    summary_ws = wb["Summary"]
    cells = {r[0].value: r[1] for r in summary_ws.iter_rows() if r[0].value}
    assert cells["Total claimed"].value == "=SUM(Claims!F2:F3)"
    assert "£" in cells["Total claimed"].number_format
    assert cells["Claims (SSP)"].value == '=COUNTIF(Claims!B2:B3,"SSP")'
    assert cells["Claims (total)"].value == "=COUNTA(Claims!A2:A3)"
    assert isinstance(cells["As-of"].value, datetime)
    assert cells["Run id(s)"].value == str(summary.run_id)
    computed = {label: evaluate(wb, cell.value) for label, cell in cells.items()
                if isinstance(cell.value, str) and cell.value.startswith("=")}
    assert computed == {"Claims (SSP)": 1, "Claims (CE)": 1, "Claims (total)": 2,
                        "Total claimed": int(totals["total_claimed_gbp"]),
                        "Held for review (families, not claimed)": 0,
                        "Held back (not claimed)": 0, "Withdrawals (claims)": 1,
                        "Repayable (claimed in an earlier return)": 0}
    withdrawals = wb["Withdrawals"]
    assert [c.value for c in withdrawals[2]][:2] == ["C", "SSP"]
    assert withdrawals.freeze_panes == "A2" and withdrawals.auto_filter.ref


def test_return_lists_withdrawals_since_the_last_return_and_held_families(wh) -> None:
    """A claim returned at June, withdrawn in July, is repayable in July's return."""
    path, con, m = wh
    m.family("A", "2023-01-10", {"1A": None, "2A": None})
    m.achieved(AS_OF, "A", {"1A": "2023-11-01", "2A": "2023-12-01"})
    record_due_claims(con, PLAN, d(AS_OF))
    con.close()
    write_return(path, d(AS_OF), path.parent / "june")
    withdraw_claim(path, "A", "UPN belonged to a cousin", "auditor")
    con = duckdb.connect(str(path))
    m.con = con
    m.clear_run()
    m.family("D", "2023-01-10", {"1A": None, "6A": None})
    m.achieved("2024-07-31", "D", {"1A": "2023-11-01", "6A": "2024-01-01"})
    run2 = record_due_claims(con, PLAN, d("2024-07-31")).run_id
    con.execute("INSERT INTO claims.held_pairs VALUES (?, 'H', 'pair-1', 'H-P1', '3A', "
                "'not_achieved', 'social_care_episodes', 'EP2', 0.71, 'twin guard')", [run2])
    con.close()
    _, xlsx_path, totals_path = write_return(path, d("2024-07-31"), path.parent / "july")
    totals = {r["item"]: r["value"] for r in read_csv(totals_path)}
    assert totals["withdrawals"] == "1" and totals["repayable_gbp"] == str(PAYMENT_GBP)
    assert totals["held_families"] == "1" and totals["held_back_gbp"] == str(PAYMENT_GBP)
    wb = load_workbook(xlsx_path)
    w = wb["Withdrawals"]
    header = [c.value for c in w[1]]
    row = dict(zip(header, [c.value for c in w[2]], strict=True))
    assert row["family_id"] == "A" and row["reason"] == "UPN belonged to a cousin"
    assert row["in_earlier_return"] == "yes" and row["repayable_gbp"] == PAYMENT_GBP
    assert isinstance(row["claimed_as_of"], datetime) and isinstance(row["withdrawn_at"],
                                                                     datetime)
    h = wb["Held for review"]
    held = dict(zip([c.value for c in h[1]], [c.value for c in h[2]], strict=True))
    assert held["family_id"] == "H" and "3A (pair-1)" in held["would_contradict"]
    assert held["value_held_back_gbp"] == PAYMENT_GBP
    assert "£" in h.cell(row=2, column=3).number_format
    cells = {r[0].value: r[1].value for r in wb["Summary"].iter_rows() if r[0].value}
    assert cells["Held back (not claimed)"] == "=SUM('Held for review'!C2:C2)"
    assert cells["Repayable (claimed in an earlier return)"] == "=SUM(Withdrawals!I2:I2)"
    assert evaluate(wb, cells["Held back (not claimed)"]) == int(totals["held_back_gbp"])
    assert evaluate(wb, cells["Repayable (claimed in an earlier return)"]) == int(
        totals["repayable_gbp"])
    assert [r["family_id"] for r in read_csv(path.parent / "july" / f"claims_return_{PLAN}_"
                                              "2024-07-31.csv")] == ["D"]


def test_claims_csv_is_read_only_and_needs_a_warehouse(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_claims_csv(tmp_path / "missing.duckdb", date(2024, 6, 30), tmp_path / "c.csv")


def test_national_rules_come_from_rules_national_yaml(wh, tmp_path: Path) -> None:
    """min_problems, the national problems and the tie-break are read from one file."""
    import yaml

    from rules.national import NATIONAL_PATH, load_national

    rules = load_national()
    assert (rules.min_problems, rules.national_problems) == (2, [1, 2, 3, 4, 5, 6])
    assert rules.claim_ranking.on_tie == "SSP" and PAYMENT_GBP == rules.results_payment_gbp
    raw = yaml.safe_load(NATIONAL_PATH.read_text(encoding="utf-8"))
    raw["min_problems"] = "two"
    bad = tmp_path / "national.yaml"
    bad.write_text(yaml.safe_dump(raw), encoding="utf-8")
    from rules.models import RuleFileError

    with pytest.raises(RuleFileError, match=r"national\.yaml: min_problems"):
        load_national(bad)


def test_a_return_with_no_claims_is_named_for_the_runs_plan(wh) -> None:
    path, con, m = wh
    m.family("S", "2023-01-10", {"6A": None})
    record_due_claims(con, PLAN, d(AS_OF))
    con.close()
    csv_path, xlsx_path, totals_path = write_return(path, d(AS_OF), path.parent / "return")
    assert csv_path.name == f"claims_return_{PLAN}_{AS_OF}.csv"
    assert csv_path.read_text(encoding="utf-8").splitlines() == [",".join(
        ["family_id", "claim_type", "achieved_on", "problems", "payment_gbp", "run_id", "plan",
         "as_of", "run_recorded_at", "produced_at", "problem_names"])]
    totals = {r["item"]: r["value"] for r in read_csv(totals_path)}
    assert totals["claims"] == "0" and totals["total_claimed_gbp"] == "0"
    ws = load_workbook(xlsx_path)["Summary"]
    cells = {r[0].value: r[1].value for r in ws.iter_rows() if r[0].value}
    assert cells["Total claimed"] == "=SUM(Claims!F2:F2)"      # an empty range sums to 0


def test_headline_problem_names_are_declared_once(tmp_path: Path) -> None:
    """The return and the audit pack name problems from rules/national.yaml (and a plan's own
    local_problems); a national problem with no name stops the load, naming the field."""
    import yaml

    from rules.models import RuleFileError
    from rules.national import NATIONAL_PATH, load_national, name_problems

    assert name_problems("1;7", "thurrock") == ("1 crime or anti-social behaviour; "
                                                "7 demand management (avoidable police call-outs)")
    assert name_problems("1;7", "countywide") == "1 crime or anti-social behaviour; 7"
    raw = yaml.safe_load(NATIONAL_PATH.read_text(encoding="utf-8"))
    del raw["headline_problems"][6]
    bad = tmp_path / "national.yaml"
    bad.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"headline_problems names no problem \[6\]"):
        load_national(bad)
