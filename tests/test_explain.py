"""``famlink explain``: the audit pack for a claimed and an unclaimed family."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console
from test_claims_support import PLAN, d, new_warehouse

from famlink.claims import record_due_claims, withdraw_claim
from famlink.claims.explain import explain_family

AS_OF = "2024-06-30"


def build(tmp_path: Path) -> Path:
    path = tmp_path / "wh.duckdb"
    con, m = new_warehouse(path)
    m.family("CLAIMED", "2023-01-10", {"1A": None, "2A": None})
    m.achieved(AS_OF, "CLAIMED", {"1A": "2023-11-01", "2A": "2024-02-01"})
    m.links("CLAIMED")
    m.family("OPEN", "2023-02-01", {"1A": None, "5A": None})
    m.achieved(AS_OF, "OPEN", {"1A": "2023-11-01"})
    m.status(AS_OF, "OPEN", "5A", "not_yet_sustained")
    m.family("SINGLE", "2023-02-01", {"6A": None})
    record_due_claims(con, PLAN, d(AS_OF))
    # the next run rebuilds the marts: the claim's evidence must survive in the ledger
    m.clear_run()
    m.status("2024-07-31", "OPEN", "5A", "not_yet_sustained")
    record_due_claims(con, PLAN, d("2024-07-31"))
    con.close()
    return path


def run(path: Path, family: str, html: Path | None = None, as_of: str | None = None):
    buf = io.StringIO()
    pack = explain_family(path, family, d(as_of) if as_of else None, html,
                          console=Console(file=buf, width=160, color_system=None))
    return pack, buf.getvalue()


def test_explain_claimed_family(tmp_path: Path) -> None:
    path = build(tmp_path)
    html = tmp_path / "claimed.html"
    pack, text = run(path, "CLAIMED", html)
    assert pack.decision == "claimed" and pack.as_of == d(AS_OF) and pack.plan == PLAN
    assert pack.claim is not None and pack.claim["claim_type"] == "SSP"
    assert "as recorded at claim time, run 1" in pack.source
    assert [m.person_ref for m in pack.members] == ["CLAIMED-P1", "CLAIMED-P2"]
    linked = {r["record_key"]: r for r in pack.members[0].records}
    assert linked["CLAIMED-nom"]["match_method"] == "nhs_number"
    assert linked["CLAIMED-dwp"]["match_probability"] == 0.973
    assert [p.indicator for p in pack.problems] == ["1A", "2A"]
    outcome = pack.problems[1].outcomes[0]
    assert outcome.status == "achieved" and outcome.rule and "rule for 2A" in outcome.rule
    assert outcome.evidence[0]["record_key"] == "CLAIMED-2A-r0"
    assert outcome.evidence[0]["file"] == "police_incidents.csv"
    assert pack.household_links[0]["incident_ref"] == "INC-CLAIMED"
    assert "Claimed" in pack.reason and "1;2" in pack.reason
    for needle in ("CLAIMED", "Decision: claimed", "CLAIMED-dwp", "probabilistic (p=0.973)",
                   "CLAIMED-2A-r0"):
        assert needle in text

    page = html.read_text(encoding="utf-8")
    assert "<style>" in page
    assert not re.search(r"<script|<link|https?://|@import", page)
    for needle in ("Audit pack: family CLAIMED", "probabilistic (p=0.973)", "CLAIMED-2A-r0",
                   "police_incidents.csv", "rule for 2A", "CLAIMED-P2"):
        assert needle in page

    # at a later as-of the family shows as already claimed, never due again
    later, _ = run(path, "CLAIMED", as_of="2024-07-31")
    assert later.decision == "already_claimed"


def test_explain_unclaimed_families(tmp_path: Path) -> None:
    path = build(tmp_path)
    html = tmp_path / "open.html"
    pack, text = run(path, "OPEN", html, as_of=AS_OF)
    assert pack.claim is None and pack.decision == "not_due"
    assert "5A=not_yet_sustained" in pack.reason
    assert any("rebuilt by each run" in n for n in pack.notes)   # past run: marts moved on
    assert "Decision: not_due" in text
    assert "5A=not_yet_sustained" in html.read_text(encoding="utf-8")

    latest, _ = run(path, "OPEN")                  # default: the latest run
    assert latest.as_of == d("2024-07-31") and latest.decision == "not_due"
    assert {p.indicator: p.status for p in latest.problems} == {
        "1A": "no_status", "5A": "not_yet_sustained"}

    single, _ = run(path, "SINGLE")
    assert single.decision == "not_eligible" and "Not eligible" in single.reason


def test_explain_withdrawn_claim(tmp_path: Path) -> None:
    path = build(tmp_path)
    withdraw_claim(path, "CLAIMED", "UPN belonged to a cousin", "auditor.khan")
    pack, text = run(path, "CLAIMED")
    assert pack.decision == "withdrawn"
    assert "UPN belonged to a cousin" in pack.reason and "auditor.khan" in pack.reason
    assert "WITHDRAWN" in text


def test_explain_on_a_warehouse_without_runs(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    html = tmp_path / "none.html"
    pack, _ = run(path, "FAM000001", html)
    assert pack.decision == "no_evaluation" and pack.claim is None and pack.notes
    assert "FAM000001" in html.read_text(encoding="utf-8")


# ------------------------------------------------ against a real warehouse (one session build)

def _cli_explain(warehouse: Path, family: str, *extra: str) -> str:
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "famlink", "explain", family, "--warehouse",
                             str(warehouse), *extra], capture_output=True, text=True,
                            check=False, timeout=120, env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def _ids_of(warehouse: Path, family: str) -> set[str]:
    """Every id an auditor would look up for the family: members, records, evidence, pairs."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        ids = {family}
        for sql in ("SELECT person_ref FROM staging.cohort_members WHERE family_id = ?",
                    "SELECT rl.record_key FROM linkage.record_links AS rl JOIN "
                    "staging.cohort_members AS m USING (person_ref) WHERE m.family_id = ?",
                    "SELECT record_key FROM marts.outcome_evidence WHERE family_id = ?",
                    "SELECT pair_id FROM claims.held_pairs WHERE family_id = ?"):
            ids |= {str(r[0]) for r in con.execute(sql, [family]).fetchall()}
    finally:
        con.close()
    return ids


def _fits(text: str, ids: set[str]) -> None:
    too_long = [line for line in text.splitlines() if len(line) > 100]
    assert not too_long, too_long
    cut = sorted(i for i in ids if i not in text)
    assert not cut, f"ids cut or missing: {cut}"


def test_claimed_family_reads_like_an_audit_pack(held_and_claimed, tmp_path: Path) -> None:
    _, warehouse = held_and_claimed
    html = tmp_path / "fam2.html"
    text = _cli_explain(warehouse, "FAM2", "--html", str(html))
    ids = _ids_of(warehouse, "FAM2")
    assert {"FAM2-P1", "FAM2-P2", "FAM2-EP1", "FAM2-1A", "FAM2-3A"} <= ids
    _fits(text, ids)
    flat = " ".join(text.split())            # the terminal wraps sentences: read them whole
    assert "[kind=" not in flat and "parts=[" not in flat        # no Python repr of the rule
    assert "as recorded at claim time, run 1" in flat
    # the plan's words and reading, then each part of the rule tree with its finding
    assert "The plan: No offences for six months" in flat and "reading:" in flat
    assert "- 1: any one of the parts below. achieved on 2023-07-01" in flat
    assert ("1.no_offences: No offences (or ASB) for six months: no proven offences, charged or "
            "cautioned adult offences or ASB incidents in the 6 months to the as-of date") in flat
    # the window judged and what was found there, with how far the data reached
    assert ("found 0 proven offences, charged or cautioned adult offences or ASB incidents "
            "2023-12-31..2024-06-30, no delivery of police_incidents, police_nominals, "
            "yot_offences") in flat
    assert ("found 1 practitioner evidence record(s) that count, 2023-06-01..2024-06-30, "
            "deliveries to 2024-06") in flat
    assert "2022-01-10..2023-03-01" in flat          # the linked episode's own dates
    assert "(problem 1 crime or anti-social" in text      # names beside digits (a table cell)
    assert [p.problem_name for p in explain_family(warehouse, "FAM2", None, None, quiet=True)
            .problems] == ["crime or anti-social behaviour", "children who need help"]
    assert "problems 1;3 (1 crime or anti-social behaviour; 3 children who need help)" in flat
    page = html.read_text(encoding="utf-8")
    assert "[kind=" not in page and "as recorded at claim time" in page
    assert "2023-12-31..2024-06-30" in page and "2022-01-10..2023-03-01" in page
    assert "1 crime or anti-social behaviour" in page


def test_held_family_fits_100_columns_with_its_pair_whole(held_and_claimed) -> None:
    _, warehouse = held_and_claimed
    text = _cli_explain(warehouse, "FAM1")
    ids = _ids_of(warehouse, "FAM1")
    assert any(i.startswith("DL-") for i in ids)           # the doubtful pair's id
    _fits(text, ids)
    assert "Decision: held_for_review" in text


def test_a_claim_keeps_its_claim_time_record_whatever_later_runs_do(
        held_and_claimed, tmp_path: Path) -> None:
    """Later runs relink and rebuild the marts: the pack still shows what the claim rested on,
    and says what differs now."""
    import shutil

    import duckdb

    _, built = held_and_claimed
    warehouse = tmp_path / "wh.duckdb"
    shutil.copy2(built, warehouse)
    con = duckdb.connect(str(warehouse))
    # what a later run could do: the episode unlinked, 3A judged not achieved
    con.execute("DELETE FROM linkage.record_links WHERE record_key = 'FAM2-EP1'")
    con.execute("UPDATE marts.problem_status SET status = 'not_achieved', achieved_on = NULL "
                "WHERE family_id = 'FAM2' AND indicator = '3A'")
    con.execute("DELETE FROM claims.claim_evidence")     # even the per-table copies
    con.close()
    pack, text = run(warehouse, "FAM2")
    assert pack.snapshot is not None and pack.snapshot["run_id"] == 1
    assert pack.decision == "claimed"
    linked = {r["record_key"] for m in pack.members for r in m.records}
    assert "FAM2-EP1" in linked                              # as at claim time
    assert {p.indicator: p.status for p in pack.problems} == {"1A": "achieved",
                                                             "3A": "achieved"}
    assert pack.problems[1].outcomes[0].evidence[0]["record_key"] == "FAM2-3A"
    assert any("no longer linked to social_care_episodes:FAM2-EP1" in c for c in pack.changes)
    assert any(c.startswith("3A is not_achieved at the latest run") for c in pack.changes)
    assert "the current data differ from the claim-time record" in " ".join(text.split())


def test_a_count_rule_names_its_window_and_the_data_it_had() -> None:
    from datetime import date

    from famlink.claims.explain import _found
    from rules.engine import load_plan

    rule = load_plan(PLAN).rule("1.no_offences")
    delivered = {"yot_offences": "2024-12", "police_nominals": "2024-12",
                 "police_incidents": "2024-12"}
    assert _found(rule, "before=2 after=0", date(2023, 1, 10), date(2024, 12, 31),
                  delivered) == ("0 proven offences, charged or cautioned adult offences or ASB "
                                 "incidents 2024-07-01..2024-12-31, deliveries to 2024-12")
    late = _found(rule, "before=0 after=0 missing delivery: yot_offences.csv for 2024-11",
                  date(2024, 9, 1), date(2024, 12, 31), {**delivered, "yot_offences": "2024-10"})
    assert late == ("0 proven offences, charged or cautioned adult offences or ASB incidents "
                    "2024-09-01..2024-12-31; missing delivery: yot_offences.csv for 2024-11, "
                    "deliveries: police_incidents to 2024-12, police_nominals to 2024-12, "
                    "yot_offences to 2024-10")


def test_the_pack_at_rich_width_100_keeps_ids_whole(held_and_claimed) -> None:
    from famlink.claims.explain import print_pack

    _, warehouse = held_and_claimed
    for family in ("FAM1", "FAM2"):
        pack = explain_family(warehouse, family, None, None, quiet=True)
        buf = io.StringIO()
        print_pack(pack, Console(file=buf, width=100, color_system=None))
        _fits(buf.getvalue(), _ids_of(warehouse, family))


def test_attendance_terms_are_named_and_attendance_is_a_percentage() -> None:
    from datetime import date

    from famlink.claims.explain import _found
    from rules.engine import load_plan

    rule = load_plan(PLAN).rule("2.attendance")
    assert _found(rule, "terms 6068..6071 worst attendance 0.974", date(2023, 2, 27),
                  date(2024, 12, 31), {"school_attendance": "2024-12",
                                       "school_exclusions": "2024-12"}) == (
        "terms summer 2022/23..summer 2023/24: worst attendance 97.4%, deliveries to 2024-12")
