"""Learning from the data at hand: the warehouse linkage, famlink link and train-linkage."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import duckdb
from linkage_fixtures import STAGING_SQL, record_links, staging_con

import matchers.probabilistic as probabilistic
from matchers.comparisons import person_settings
from matchers.linkage import link_warehouse
from matchers.pairs import link_files

FAMLINK = str(Path(sys.executable).with_name("famlink"))


def _fixed_m() -> dict[tuple[str, str], float]:
    return {(c["output_column_name"], lv["label_for_charts"]): lv["m_probability"]
            for c in person_settings()["comparisons"] for lv in c["comparison_levels"]
            if lv.get("fix_m_probability")}


def test_small_warehouse_is_scored_with_the_committed_model_and_says_so():
    con = staging_con()
    summary = link_warehouse(con)
    assert "too few" in summary.model_note
    learnt, how, n = con.execute(
        "SELECT bool_or(learnt), any_value(how), count(*) FROM linkage.model_parameters"
    ).fetchall()[0]
    assert learnt is False and "too few" in how and n > 20


def test_learning_keeps_fixed_m_and_the_traps(monkeypatch):
    # train even on the fixture's handful of profiles: EM runs for real on them
    monkeypatch.setattr(probabilistic, "MIN_TRAIN_RECORDS", 5)
    con = staging_con()
    summary = link_warehouse(con)
    assert summary.model_note.startswith("learnt from these")
    rows = con.execute(
        "SELECT comparison, label, m_probability, learnt FROM linkage.model_parameters"
    ).fetchall()
    assert all(r[3] for r in rows)
    got = {(c, lb): m for c, lb, m, _ in rows}
    for key, m in _fixed_m().items():
        assert abs(got[key] - m) < 1e-12, key  # fixed m levels are never learnt
    links = record_links(con)
    # twins stay two people, a stranger stays a stranger
    assert links[("cohort_members", "P1")][0] != links[("cohort_members", "P2")][0]
    assert links[("police_nominals", "I4|N9")][1] is None


def test_link_files_dedupes_one_file_and_reports_the_model(tmp_path):
    path = tmp_path / "people.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "given_name", "surname", "date_of_birth", "postcode", "address"])
        w.writerow(["a", "Michaela", "Neumann", "1951-11-11", "4223", "8 stanley street"])
        w.writerow(["b", "Michaela", "Neuman", "1951-11-11", "4223", "8 stanley st reet"])
        w.writerow(["c", "Courtney", "Painter", "1961-12-14", "4560", "12 pinkerton circuit"])
    summary = link_files(path, path, tmp_path / "pairs.csv")
    rows = list(csv.DictReader((tmp_path / "pairs.csv").open()))
    assert [(r["left_id"], r["right_id"]) for r in rows] == [("a", "b")]
    assert "too few" in summary.model_note


def _warehouse(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute(STAGING_SQL)
    con.close()
    return path


def test_train_linkage_refuses_to_overwrite_the_committed_model(tmp_path):
    wh = _warehouse(tmp_path / "wh.duckdb")
    shipped = probabilistic.DEFAULT_MODEL_PATH
    before = shipped.read_bytes()
    run = subprocess.run([FAMLINK, "train-linkage", "--warehouse", str(wh), "--out",
                          str(shipped)], capture_output=True, text=True)
    assert run.returncode != 0
    assert "--replace" in run.stderr + run.stdout and "Traceback" not in run.stderr
    assert shipped.read_bytes() == before


def test_train_linkage_writes_a_new_file_with_a_before_after_summary(tmp_path):
    wh = _warehouse(tmp_path / "wh.duckdb")
    run = subprocess.run([FAMLINK, "train-linkage", "--warehouse", str(wh)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = list(tmp_path.glob("person_model_*.json"))
    assert len(out) == 1 and str(out[0]) in run.stdout.replace("\n", "")
    assert json.loads(out[0].read_text())["comparisons"]
    assert "m before>after" in run.stdout and "dob" in run.stdout
    # Splink's own warnings are summed up in one line, never printed raw
    assert run.stdout.count("Splink:") == 1
    assert "WARNING" not in run.stderr and "m values not fully trained" not in run.stdout


def test_the_report_gets_the_parameters_and_splinks_charts_offline():
    from matchers.linkage import model_used
    from matchers.probabilistic import model_charts, model_charts_html

    con = staging_con()
    link_warehouse(con)
    rows, model, how = model_used(con)
    assert rows[0]["comparison"] == "first_name" and "too few" in how
    assert len(model_charts(model)) == 2
    page = model_charts_html(model)[0]
    assert "<html" in page and "cdn.jsdelivr" not in page  # Vega inline: no network


def test_link_refuses_a_file_with_no_name_and_no_dob_column(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("id,first_name,last_name,dob\na,Ann,Lee,2001-02-03\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("ref,colour\n1,blue\n")
    run = subprocess.run([FAMLINK, "link", "--left", str(good), "--right", str(bad), "--out",
                          str(tmp_path / "pairs.csv")], capture_output=True, text=True)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    out = (run.stderr + run.stdout).strip()
    assert "bad.csv" in out and "no name or date-of-birth column" in out
    assert len(out.splitlines()) == 1
    assert not (tmp_path / "pairs.csv").exists()
