"""Why these are one person: the audit pack shows Splink's waterfall of each probabilistic link.

On test_review's real drop (one session build, ``held_and_claimed``): FAM2's child has
an early-help episode under a third child_id and no identifier, linked by the model
alone. Its waterfall (the prior, then each comparison's level and match weight) adds
up to the pair's match weight, and its probability is the one ``record_links`` keeps.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
from rich.console import Console

from famlink.claims.explain import explain_family, print_pack

WATERFALL_COLUMNS = {"record_id_l", "record_id_r", "profile_l", "profile_r", "kept_as", "step",
                     "comparison", "gamma", "label", "level_weight", "tf_adjustment",
                     "match_weight", "running_weight"}


def _probabilistic(pack) -> list[dict]:
    return [r for m in pack.members for r in m.records if r.get("match_method") == "probabilistic"]


def test_the_warehouse_keeps_the_waterfall_of_each_link_and_doubtful_pair(
        held_and_claimed) -> None:
    _, warehouse = held_and_claimed
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cols = {r[0] for r in con.execute("DESCRIBE linkage.link_waterfall").fetchall()}
        assert cols == WATERFALL_COLUMNS
        steps = con.execute(
            """SELECT w.kept_as, w.comparison, w.label, w.level_weight, w.running_weight,
                      pp.match_weight, mp.match_weight
               FROM linkage.link_waterfall AS w
               JOIN linkage.person_pairs AS pp USING (profile_l, profile_r)
               LEFT JOIN linkage.model_parameters AS mp
                 ON mp.comparison = w.comparison AND mp.label = w.label
               ORDER BY w.profile_l, w.profile_r, w.step""").fetchall()
        model = json.loads(con.execute(
            "SELECT any_value(model_json) FROM linkage.model_parameters").fetchone()[0])
        pairs = con.execute("SELECT count(DISTINCT (profile_l, profile_r)), "
                            "count(DISTINCT kept_as) FROM linkage.link_waterfall").fetchone()
    finally:
        con.close()
    # the link (FAM2-EP3) and the doubtful pairs (Gordy, Sunny) each have a waterfall
    assert {k for k, *_ in steps} == {"link", "doubtful"} and pairs[1] == 2
    names = ["prior"] + [c["output_column_name"] for c in model["comparisons"]]
    assert len(steps) == pairs[0] * len(names)
    assert [s[1] for s in steps[:len(names)]] == names
    for i in range(0, len(steps), len(names)):
        pair = steps[i:i + len(names)]
        assert abs(pair[-1][4] - pair[-1][5]) < 1e-9          # the total is Splink's score
    # each level's weight is the model's log2(m/u) for that level (null levels weigh 0)
    for _, comparison, label, weight, _, _, model_weight in steps:
        if comparison != "prior" and model_weight is not None:
            assert abs(weight - model_weight) < 1e-9, (comparison, label)


def test_the_pack_shows_the_waterfall_under_the_linked_record(
        held_and_claimed, tmp_path: Path) -> None:
    _, warehouse = held_and_claimed
    html = tmp_path / "fam2.html"
    pack = explain_family(warehouse, "FAM2", None, html, quiet=True)
    linked = _probabilistic(pack)
    assert [r["record_key"] for r in linked] == ["FAM2-EP3"]
    rec = linked[0]
    wf = rec["waterfall"]
    assert wf["matched_to_record_id"] == rec["matched_to_record_id"]
    total = sum(s["match_weight"] for s in wf["steps"])
    assert abs(total - wf["match_weight"]) < 1e-9
    assert abs(wf["steps"][-1]["running_weight"] - wf["match_weight"]) < 1e-9
    assert abs(wf["match_probability"] - rec["match_probability"]) < 1e-9
    assert wf["steps"][0]["comparison"] == "prior"
    assert {s["comparison"]: s["label"] for s in wf["steps"]}["dob"] == "exact"
    # a claimed family: the waterfall is the one frozen in the claim-time snapshot
    assert pack.snapshot is not None

    page = html.read_text(encoding="utf-8")
    assert page.count("<svg") == len(linked) == page.count("</svg>")
    assert not re.search(r"<script|<link|https?://|@import", page)
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert svg.count("<rect") == len(wf["steps"]) + 1          # each step, then the final
    assert f"{wf['match_weight']:+.2f}" in svg and "dob: exact" in svg

    buf = io.StringIO()
    print_pack(pack, Console(file=buf, width=100, color_system=None))
    text = buf.getvalue()
    assert "Why social_care_episodes:FAM2-EP3 is FAM2-P2" in " ".join(text.split())
    assert f"match probability {wf['match_probability']:.6f}" in text


def test_the_waterfall_table_fits_100_columns(held_and_claimed) -> None:
    _, warehouse = held_and_claimed
    for family, needle in (("FAM2", "Why social_care_episodes:FAM2-EP3 is FAM2-P2"),
                           ("FAM1", "Why social_care_episodes:FAM1-EP2 is FAM1-P2? (pair DL-")):
        result = subprocess.run([sys.executable, "-m", "famlink", "explain", family,
                                 "--warehouse", str(warehouse)], capture_output=True, text=True,
                                check=False, timeout=120, env={**os.environ, "COLUMNS": "100"})
        assert result.returncode == 0, result.stderr
        assert needle in " ".join(result.stdout.split()) and "identifiers" in result.stdout
        too_long = [line for line in result.stdout.splitlines() if len(line) > 100]
        assert not too_long, too_long


def test_a_held_pair_shows_the_waterfall_of_its_doubtful_pair(
        held_and_claimed, tmp_path: Path) -> None:
    """FAM1's "Gordy": the twin guard refused the pair, its score is still explained."""
    _, warehouse = held_and_claimed
    html = tmp_path / "fam1.html"
    pack = explain_family(warehouse, "FAM1", None, html, quiet=True)
    page = html.read_text(encoding="utf-8")
    assert page.count("<svg") == 1 and "might be FAM1-P2 (pair DL-" in page
    assert not re.search(r"<script|<link|https?://|@import", page)
    shown = [h for h in pack.held if h.get("waterfall")]
    assert len(shown) == 1 and shown[0]["waterfall"]["record_id"] == (
        "social_care_episodes:FAM1-EP2")
    wf = shown[0]["waterfall"]
    assert abs(wf["match_probability"] - shown[0]["match_probability"]) < 1e-9
    assert abs(sum(s["match_weight"] for s in wf["steps"]) - wf["match_weight"]) < 1e-9


def test_a_snapshot_written_before_waterfalls_still_explains(
        held_and_claimed, tmp_path: Path) -> None:
    """Claims recorded before the waterfall existed: their snapshot has no such field."""
    _, built = held_and_claimed
    warehouse = tmp_path / "wh.duckdb"
    shutil.copy2(built, warehouse)
    con = duckdb.connect(str(warehouse))
    (claim_id, text), = con.execute("SELECT claim_id, pack FROM claims.claim_snapshots").fetchall()
    raw = json.loads(text)
    for m in raw["members"]:
        for r in m["records"]:
            r.pop("waterfall", None)
    con.execute("UPDATE claims.claim_snapshots SET pack = ? WHERE claim_id = ?",
                [json.dumps(raw), claim_id])
    con.close()
    html = tmp_path / "old.html"
    pack = explain_family(warehouse, "FAM2", None, html, quiet=True)
    assert pack.snapshot is not None
    assert [r.get("waterfall") for r in _probabilistic(pack)] == [None]
    assert "<svg" not in html.read_text(encoding="utf-8")
