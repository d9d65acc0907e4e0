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

from famlink.claims.review import record_decision_in
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
    # Splink is given the new profiles and the rows its blocking rules could pair them
    # with, not every profile (the pairs are a full rescoring's: the next test)
    (reason, profiles), = _rows(runs["incremental"], "SELECT reason, profiles FROM linkage.runs "
                                                    "ORDER BY run DESC LIMIT 1")
    given = int(reason.split("; ")[-1].split()[0])
    assert new < given < profiles / 2, reason
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


def test_records_kept_and_read_again_equal_records_read_whole(
        runs: dict[str, Path], tmp_path: Path) -> None:
    """The incremental December skips the extracts with no delivery since November and
    standardises only what is new; its records equal a whole read of every extract."""
    from famlink.warehouse import connect
    from matchers.records import build_person_records

    copy = tmp_path / "w.duckdb"
    shutil.copyfile(runs["incremental"], copy)
    con = connect(copy)
    try:
        skipped = {name for (name,) in con.execute(
            """SELECT extract FROM (SELECT DISTINCT extract FROM meta.deliveries
                                    WHERE status = 'loaded')
               WHERE extract NOT IN (SELECT extract FROM meta.deliveries
                                     WHERE month = '2024-12' AND status = 'loaded')""").fetchall()}
        sql = "SELECT * FROM linkage.person_records"
        kept = sorted(con.execute(sql).fetchall(), key=repr)
        build_person_records(con, reuse=True)
        read = {name for (name,) in con.execute("FROM _fl_extracts_read").fetchall()}
        assert read == set(), read              # nothing delivered since: nothing read
        build_person_records(con, reuse=False)
        whole = sorted(con.execute(sql).fetchall(), key=repr)
    finally:
        con.close()
    assert kept == whole and len(kept) > 1000
    from matchers.records import EXTRACTS, READS_ALSO

    person_extracts = {n for n in set(EXTRACTS) & skipped
                       if set(READS_ALSO.get(n, ())) <= skipped}
    assert person_extracts, skipped              # the sample has a month without some
    (reason,), = _rows(runs["incremental"], "SELECT reason FROM linkage.runs "
                                           "ORDER BY run DESC LIMIT 1")
    unread = reason.split("records not read again (no delivery since): ")[1].split("; ")[0]
    assert set(unread.split(", ")) == person_extracts, reason


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


# ---------------------------------------------------------------- touched components
# An incremental run clusters again only the components of the edge graph with a
# new, changed or vanished profile or edge (``matchers.incremental.touched_profiles``)
# and keeps every other component's clustering. Each step below is checked against
# clustering every component afresh over the same pairs (the kept clustering dropped).

CLUSTER_OUTPUTS = (
    "SELECT * FROM linkage.record_links",
    "SELECT * FROM linkage.cluster_nodes",
    "SELECT * FROM linkage.cluster_outcome",
    "SELECT * FROM linkage.clerical_review",
    "SELECT * FROM linkage.doubtful_links",
    "SELECT * FROM linkage.link_waterfall",
)


def _outputs(con: duckdb.DuckDBPyConnection) -> list[list[tuple]]:
    return [sorted(con.execute(sql).fetchall(), key=repr) for sql in CLUSTER_OUTPUTS]


def _link_checked(con: duckdb.DuckDBPyConnection):
    """Link incrementally, then cluster everything again from the same pairs: the two
    must agree on every clustering output."""
    s = link_warehouse(con)
    assert s.mode == "incremental", s.mode_reason
    kept = _outputs(con)
    for table in ("cluster_nodes", "cluster_outcome", "cluster_edges"):
        con.execute(f"DROP TABLE linkage.{table}")
    full = link_warehouse(con)
    assert full.pairs_scored == 0 and full.profiles_clustered > 1000
    for sql, a, b in zip(CLUSTER_OUTPUTS, kept, _outputs(con), strict=True):
        assert a == b, sql
    return s


def _persons(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT record_id, person_id FROM linkage.record_links").fetchall())


def _rows_of(con: duckdb.DuckDBPyConnection, start: dict[str, str],
             affected: set[str]) -> list[tuple]:
    """The record_links rows of every record whose person at ``start`` is not ``affected``."""
    keep = sorted(r for r, p in start.items() if p not in affected)
    return sorted(con.execute(
        "SELECT * FROM linkage.record_links WHERE record_id IN (SELECT unnest(?))",
        [keep]).fetchall(), key=repr)


def _replace_staging(con: duckdb.DuckDBPyConnection, extract: str, sql: str) -> None:
    """Stand in for next month's staging view ``extract`` (its rows as ``sql`` over SRC)."""
    kind = con.execute("SELECT table_type FROM information_schema.tables WHERE "
                       "table_schema = 'staging' AND table_name = ?", [extract]).fetchall()
    if kind == [("VIEW",)]:
        con.execute(f"ALTER VIEW staging.{extract} RENAME TO {extract}_view")
    else:
        con.execute(f"DROP TABLE staging.{extract}")
    con.execute(f"CREATE TABLE staging.{extract} AS "
                + sql.replace("SRC", f"staging.{extract}_view"))


def test_only_touched_components_are_clustered_again(
        runs: dict[str, Path], tmp_path: Path) -> None:
    """A new record that joins two old people, then its removal (they part again, with
    the ids they had), then a reviewer's "same" between two old people: each run
    clusters a handful of profiles, equals clustering everything, and leaves every
    other person's rows exactly as they were."""
    path = tmp_path / "w.duckdb"
    shutil.copyfile(runs["incremental"], path)
    con = connect(path)
    try:
        build_staging(con, RunRequest(extracts=SAMPLE, warehouse=path, plan=PLAN, as_of=DECEMBER))
        assert _link_checked(con).profiles_clustered == 0          # nothing new
        start = _persons(con)
        # X: a youth offending person; Y: a pupil in another person with no YOT record
        (x_person, x_yot), = con.execute(
            """SELECT rl.person_id, y.yot_person_id FROM staging.yot_offences y
               JOIN linkage.record_links rl ON rl.record_id = 'yot_offences:' || y.offence_id
               WHERE y.upn IS NULL ORDER BY y.offence_id LIMIT 1""").fetchall()
        (y_person, y_upn), = con.execute(
            """SELECT rl.person_id, s.upn FROM staging.school_attendance s
               JOIN linkage.record_links rl ON rl.record_id = 'school_attendance:' || s.upn
                    || '|' || s.academic_year || '|' || s.term
               WHERE rl.person_id <> ? AND rl.person_id NOT IN (
                   SELECT person_id FROM linkage.record_links WHERE extract = 'yot_offences')
               ORDER BY s.upn LIMIT 1""", [x_person]).fetchall()
        # 1. a YOT record of X carrying Y's pupil details: X and Y become one person
        _replace_staging(con, "yot_offences", f"""
            SELECT * FROM SRC UNION ALL
            SELECT y.* REPLACE ('X-BRIDGE' AS offence_id, '{x_yot}' AS yot_person_id,
                                s.first_name AS first_name, s.last_name AS last_name,
                                s.dob AS dob, s.sex AS sex, s.upn AS upn)
            FROM (SELECT * FROM SRC LIMIT 1) y,
                 (SELECT * FROM staging.school_attendance WHERE upn = '{y_upn}' LIMIT 1) s""")
        untouched = _rows_of(con, start, {x_person, y_person})
        merged = _link_checked(con)
        now = _persons(con)
        joined = con.execute(
            f"""SELECT record_id FROM linkage.record_links WHERE record_id IN (
                SELECT 'yot_offences:' || offence_id FROM staging.yot_offences
                WHERE yot_person_id = '{x_yot}'
                UNION SELECT 'school_attendance:' || upn || '|' || academic_year || '|' || term
                FROM staging.school_attendance WHERE upn = '{y_upn}')""").fetchall()
        assert {start[r] for (r,) in joined if r in start} == {x_person, y_person}
        assert {now[r] for (r,) in joined} == {now["yot_offences:X-BRIDGE"]}   # one person now
        assert 0 < merged.profiles_clustered < 100                 # of thousands
        assert _rows_of(con, start, {x_person, y_person}) == untouched
        # 2. the record is withdrawn: they part, each with the person id it had
        _replace_staging(con, "yot_offences",
                         "SELECT * FROM SRC WHERE offence_id <> 'X-BRIDGE'")
        parted = _link_checked(con)
        assert 0 < parted.profiles_clustered < 100
        assert _persons(con) == start
        # 3. a reviewer decides a doubtful pair is one person: only those two are redone
        pair_id, member, other = con.execute(
            """SELECT d.pair_id, d.person_ref, d.other_person_id FROM linkage.doubtful_links d
               ORDER BY d.pair_id LIMIT 1""").fetchall()[0]
        member_person = "P-" + member
        untouched = _rows_of(con, start, {member_person, other})
        record_decision_in(con, pair_id, "same", "test", "checked the case notes")
        decided = _link_checked(con)
        assert 0 < decided.profiles_clustered < 100
        now = _persons(con)
        assert {now[r] for r, p in start.items() if p == other} == {member_person}
        assert _rows_of(con, start, {member_person, other}) == untouched
    finally:
        con.close()
