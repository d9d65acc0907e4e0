"""A run snapshots its claims from one slice of the county (``pack_scope``), not one scan of
the county per claim: the packs it stores must be exactly the packs ``build_pack`` makes
family by family.

Checked on a small generated county (claims with police, school, DWP and probabilistic
links: event dates and waterfalls) and on test_review's drop (FAM1 held, FAM2 claimed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from famlink.claims.explain import build_pack, drop_pack_scope, pack_scope, pack_to_json


def _plain(pack_json: str) -> dict:
    pack = json.loads(pack_json)
    pack.pop("produced_at")              # when it was built, not what it says
    return pack


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated county run once: ten or so claims with every kind of record."""
    from famlink.cli import app

    root = tmp_path_factory.mktemp("batched")
    drop, warehouse = root / "drop", root / "wh.duckdb"
    for args in (["generate", "--out", str(drop), "--residents", "2000", "--families", "60",
                  "--months", "12", "--seed", "5"],
                 ["run", "--extracts", str(drop), "--warehouse", str(warehouse), "--plan",
                  "countywide", "--as-of", "2023-12-31", "--no-prefect"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    return warehouse


def test_the_snapshots_a_run_stored_are_the_packs_built_alone(county: Path) -> None:
    con = duckdb.connect(str(county), read_only=True)
    try:
        stored = con.execute(
            "SELECT s.family_id, e.as_of, s.pack FROM claims.claim_snapshots AS s "
            "JOIN claims.events AS e USING (claim_id) WHERE e.event = 'claimed' "
            "ORDER BY s.family_id").fetchall()
        assert len(stored) >= 5
        texts = " ".join(text for _, _, text in stored)
        assert '"waterfall"' in texts and '"extract": "police_nominals"' in texts
        for family_id, as_of, text in stored:
            alone = pack_to_json(build_pack(con, family_id, as_of, use_snapshot=False))
            assert _plain(text) == _plain(alone), family_id
    finally:
        con.close()


def _same_from_the_slice(built: Path, tmp_path: Path) -> list:
    """Cohort families' packs from the slice and alone: equal; returns the packs."""
    warehouse = tmp_path / "wh.duckdb"
    shutil.copy2(built, warehouse)
    con = duckdb.connect(str(warehouse))
    try:
        as_of = con.execute("SELECT max(as_of) FROM claims.runs").fetchone()[0]
        # the claimed families and as many others (not-due, held: their packs differ)
        families = [f for (f,) in con.execute(
            "WITH c AS (SELECT family_id FROM claims.events), o AS (SELECT DISTINCT family_id "
            "FROM staging.cohort_families WHERE family_id NOT IN (SELECT family_id FROM c) "
            "ORDER BY 1 LIMIT (SELECT count(*) FROM c) + 2) "
            "SELECT * FROM c UNION SELECT * FROM o ORDER BY 1").fetchall()]
        plan = con.execute("SELECT plan FROM claims.runs ORDER BY run_id DESC LIMIT 1"
                           ).fetchone()[0]
        scope = pack_scope(con, families, plan, as_of)
        # the big relations really are read from the slice
        assert {"staging.cohort_members", "linkage.record_links",
                "linkage.person_records"} <= set(scope)
        # and each pack query is run once for all the families
        assert {"claim", "members", "linked", "frozen evidence", "assessment"} <= set(
            scope.rows)
        packs = {f: build_pack(con, f, as_of, use_snapshot=False, scope=scope) for f in families}
        drop_pack_scope(con, scope)
        assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary "
                               "AND table_name LIKE '\\_pack\\_%' ESCAPE '\\'").fetchone()[0]
        for family_id, pack in packs.items():
            alone = build_pack(con, family_id, as_of, use_snapshot=False)
            assert _plain(pack_to_json(pack)) == _plain(pack_to_json(alone)), family_id
        return list(packs.values())
    finally:
        con.close()


def test_every_family_reads_the_same_from_the_slice(county: Path, tmp_path: Path) -> None:
    packs = _same_from_the_slice(county, tmp_path)
    records = [r for p in packs for m in p.members for r in m.records]
    assert any(r.get("event") for r in records if r["extract"] == "police_nominals")
    assert any(r.get("event") for r in records if r["extract"] == "school_attendance")
    assert any(r.get("waterfall") for r in records)


def test_a_held_family_reads_the_same_from_the_slice(held_and_claimed, tmp_path: Path) -> None:
    _, built = held_and_claimed
    packs = _same_from_the_slice(built, tmp_path)
    assert any(p.held for p in packs) and any(p.decision == "claimed" for p in packs)
