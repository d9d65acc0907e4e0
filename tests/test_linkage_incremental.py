"""Link only what is new: an incremental month equals a full re-link with the same model.

On the shipped sample (countywide plan), a run as at 2024-11-30 learns the model;
from a copy of that warehouse, the run as at 2024-12-31 links incrementally (only
the pairs of new or changed profiles scored, with the kept model and term
frequencies), and from another copy the same run scores every pair with that
same model (``rescore_all``). A fresh run at 2024-12-31 would learn another model
from other data, so "the same" can only honestly be asked of the same model: the
two must give the same clusters, cohort members, review lists, doubtful links,
waterfalls, household links and claims. ``--relink-all`` and a new committed
model file each make a full re-link, which learns the model again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from famlink.pipeline import RunRequest, build_staging
from famlink.warehouse import connect
from flows.monthly import run_monthly_local
from matchers.linkage import link_warehouse
from matchers.probabilistic import DEFAULT_MODEL_PATH

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
PLAN = "countywide"
DECEMBER = date(2024, 12, 31)


def _run(warehouse: Path, as_of: date, **kw: bool):
    return run_monthly_local(RunRequest(extracts=SAMPLE, warehouse=warehouse, plan=PLAN,
                                        as_of=as_of, **kw))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("incremental")
    first = root / "first" / "w.duckdb"
    first.parent.mkdir()
    summary = _run(first, date(2024, 11, 30))
    assert summary.linkage.mode == "full"
    out = {"first": first}
    for name, kw in (("incremental", {}), ("rescored", {"rescore_all": True})):
        path = root / name / "w.duckdb"
        path.parent.mkdir()
        shutil.copyfile(first, path)
        s = _run(path, DECEMBER, **kw)
        assert s.linkage.mode == ("incremental" if not kw else "rescore"), s.linkage.mode_reason
        out[name] = path
    return out


def _rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(con.execute(sql).fetchall(), key=repr)
    finally:
        con.close()


def _partition(path: Path) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for rid, pid in _rows(path, "SELECT record_id, person_id FROM linkage.record_links"):
        groups.setdefault(pid, set()).add(rid)
    return {frozenset(g) for g in groups.values()}


def test_incremental_month_scores_only_new_pairs(runs: dict[str, Path]) -> None:
    (mode, new, scored, kept, model), = _rows(
        runs["incremental"], "SELECT mode, new_profiles, pairs_scored, pairs_kept, model_hash "
        "FROM linkage.runs ORDER BY run DESC LIMIT 1")
    (first_model, first_kept), = _rows(
        runs["first"], "SELECT model_hash, pairs_kept FROM linkage.runs")
    assert mode == "incremental" and model == first_model       # no re-training
    assert 0 < new < 100 and 0 < scored < kept / 10            # a month adds little
    assert kept >= first_kept - scored


def test_incremental_equals_a_full_rescoring_with_the_same_model(
        runs: dict[str, Path]) -> None:
    inc, ref = runs["incremental"], runs["rescored"]
    (ref_mode, ref_new), = _rows(ref, "SELECT mode, new_profiles FROM linkage.runs "
                                      "ORDER BY run DESC LIMIT 1")
    assert ref_mode == "rescore" and ref_new > 1000             # every profile scored
    pairs = "SELECT * FROM linkage.person_pairs"
    assert _rows(inc, pairs) == _rows(ref, pairs)
    assert _partition(inc) == _partition(ref)
    for sql in (
        "SELECT record_id, person_id, person_ref, match_method, match_probability, "
        "matched_to_record_id FROM linkage.record_links",
        "SELECT * EXCLUDE (person_id_l, person_id_r) FROM linkage.clerical_review",
        "SELECT * FROM linkage.doubtful_links",
        "SELECT * FROM linkage.link_waterfall",
        "SELECT * FROM linkage.household_links",
        "SELECT family_id, claim_type, achieved_on, problems, status FROM claims.ledger",
        "SELECT * FROM claims.claim_evidence",
    ):
        assert _rows(inc, sql) == _rows(ref, sql), sql
    assert _rows(inc, "SELECT count(*) FROM claims.ledger")[0][0] > 0


def test_relink_all_from_the_command_line_links_everything_again(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE / "2023-01", drop / "2023-01")      # one month: a quick run
    path = tmp_path / "w.duckdb"
    args = [sys.executable, "-m", "famlink", "run", "--extracts", str(drop), "--warehouse",
            str(path), "--plan", PLAN, "--as-of", "2023-01-31", "--no-prefect"]
    done = subprocess.run([*args, "--relink-all"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "linkage: full (asked for (--relink-all))" in done.stdout
    (mode, reason, new), = _rows(path, "SELECT mode, reason, new_profiles FROM linkage.runs")
    assert (mode, reason) == ("full", "asked for (--relink-all)") and new > 100


def test_nothing_new_scores_nothing_and_a_new_model_file_relinks(
        runs: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    shutil.copyfile(runs["incremental"], path)
    con = connect(path)
    try:
        build_staging(con, RunRequest(extracts=SAMPLE, warehouse=path, plan=PLAN, as_of=DECEMBER))
        before = sorted(con.execute("SELECT * FROM linkage.record_links").fetchall(), key=repr)
        again = link_warehouse(con)                       # nothing new: nothing scored
        assert again.mode == "incremental" and again.pairs_scored == 0
        assert again.new_profiles == 0 and again.vanished_profiles == 0
        assert sorted(con.execute("SELECT * FROM linkage.record_links").fetchall(),
                      key=repr) == before
        model = json.loads(DEFAULT_MODEL_PATH.read_text())
        model["probability_two_random_records_match"] *= 2   # another committed model
        other = tmp_path / "model.json"
        other.write_text(json.dumps(model))
        changed = link_warehouse(con, model_path=other)
        assert changed.mode == "full" and "model file changed" in changed.mode_reason
        assert changed.model_learnt and changed.pairs_scored > 500
        (hashes,), = con.execute("SELECT count(DISTINCT model_hash) FROM linkage.runs"
                                 ).fetchall()
        assert hashes == 2                                  # learnt again: another model
    finally:
        con.close()


def test_a_forename_no_longer_rare_scores_its_profile_again(
        runs: dict[str, Path], tmp_path: Path) -> None:
    """The guards let a forename seen once in the input pass as a typo; when a second
    record with it arrives, the first one's pairs must be scored again, as a full
    scoring would (its row is unchanged: only its rarity moved)."""
    path = tmp_path / "w.duckdb"
    shutil.copyfile(runs["incremental"], path)
    con = connect(path)
    try:
        build_staging(con, RunRequest(extracts=SAMPLE, warehouse=path, plan=PLAN, as_of=DECEMBER))
        assert link_warehouse(con).pairs_scored == 0
        rare = con.execute(
            """SELECT unique_id, first_name FROM _fl_splink_input WHERE first_name IS NOT NULL
               QUALIFY count(*) OVER (PARTITION BY first_name) = 1 AND count(*) OVER () >= 2000
               ORDER BY unique_id LIMIT 1""").fetchall()
        assert rare, "the sample needs 2,000 profiles and a forename seen once"
        (profile, forename), = rare
        before = con.execute("SELECT input_hash FROM linkage.profile_inputs "
                             "WHERE profile_id = ?", [int(profile)]).fetchall()
        # a second, unrelated youth offending record carrying that forename
        con.execute("ALTER VIEW staging.yot_offences RENAME TO yot_offences_view")
        con.execute(
            """CREATE TABLE staging.yot_offences AS SELECT * FROM staging.yot_offences_view
               UNION ALL (SELECT * REPLACE ('X-NEW-OFFENCE' AS offence_id,
                                           'X-NEW-PERSON' AS yot_person_id, ? AS first_name,
                                           'Zzyzx' AS last_name)
                          FROM staging.yot_offences_view LIMIT 1)""", [forename])
        again = link_warehouse(con)
        after = con.execute("SELECT input_hash FROM linkage.profile_inputs "
                            "WHERE profile_id = ?", [int(profile)]).fetchall()
        assert again.mode == "incremental" and again.new_profiles >= 2
        assert before and after and before != after     # the once-rare profile is new again
    finally:
        con.close()
