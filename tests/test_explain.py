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
