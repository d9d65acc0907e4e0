import csv
from pathlib import Path

from linkage_fixtures import staging_con

from matchers import link_warehouse, write_linkage_report
from matchers.pairs import link_files

HEADER = ["id", "first_name", "last_name", "dob", "sex", "postcode"]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def test_link_files_handles_nicknames_swaps_twins_and_junk(tmp_path):
    left = _write(tmp_path / "a.csv", [
        ["a1", "William", "Robertson", "1980-05-17", "M", "ss17 8aa"],
        ["a2", "Jack", "Pemberton", "2010-03-04", "M", "SS14 1AA"],
        ["a3", "Eleanor", "Whitfield", "1975-12-01", "F", "RM17 6BB"],
        ["a4", "José", "Ñúñez", "2001-02-30", "X", "75001 Paris"],
        ["a5", "", "", "", "", ""],
    ])
    right = _write(tmp_path / "b.csv", [
        ["b1", "bill", "ROBERTSON", "1980-05-17", "", "SS17 8AA"],
        ["b2", "James", "Pemberton", "2010-03-04", "M", "SS14 1AA"],
        ["b3", "WHITFIELD", "Eleanor", "1975-12-01", "F", "RM176BB"],
        ["b4", "not", "a person", "not a date", "?", "???"],
    ])
    out = tmp_path / "pairs.csv"
    summary = link_files(left, right, out)
    rows = list(csv.DictReader(out.open()))
    pairs = {(r["left_id"], r["right_id"]) for r in rows}
    assert ("a1", "b1") in pairs
    assert ("a3", "b3") in pairs
    assert ("a2", "b2") not in pairs  # twins
    assert summary.pairs == len(rows)
    assert list(rows[0]) == ["left_id", "right_id", "match_probability"]


def test_report_is_self_contained(tmp_path):
    con = staging_con()
    link_warehouse(con)
    html = write_linkage_report(con, tmp_path / "r.html").read_text()
    assert "<svg" in html and "<script" not in html and "Clerical review" in html
