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


def test_twin_pattern_goes_to_review_unless_one_file_shows_two_people(tmp_path):
    """Twins by evidence: Jack and James Pemberton (one DOB, one postcode) in two
    files are not linked and go to the review file with the reason; in one file
    (two ids, two forenames at one address) they are two people, kept apart and
    not sent to review."""
    left = _write(tmp_path / "a.csv", [
        ["a1", "William", "Robertson", "1980-05-17", "M", "SS17 8AA"],
        ["a2", "Jack", "Pemberton", "2010-03-04", "M", "SS14 1AA"],
    ])
    right = _write(tmp_path / "b.csv", [
        ["b1", "bill", "ROBERTSON", "1980-05-17", "", "SS17 8AA"],
        ["b2", "James", "Pemberton", "2010-03-04", "M", "SS14 1AA"],
    ])
    out = tmp_path / "pairs.csv"
    summary = link_files(left, right, out)
    pairs = {(r["left_id"], r["right_id"]) for r in csv.DictReader(out.open())}
    review = list(csv.DictReader(summary.review_out.open()))
    assert ("a1", "b1") in pairs and ("a2", "b2") not in pairs
    assert summary.review_out == tmp_path / "pairs_review.csv"
    assert [(r["left_id"], r["right_id"]) for r in review] == [("a2", "b2")]
    assert review[0]["reason"].startswith("twin guard")
    assert list(review[0]) == ["left_id", "right_id", "match_probability", "reason"]
    assert summary.review == 1 and summary.twins_apart == 0

    both = _write(tmp_path / "both.csv", [
        ["p1", "Jack", "Pemberton", "2010-03-04", "M", "SS14 1AA"],
        ["p2", "James", "Pemberton", "2010-03-04", "M", "SS14 1AA"],
        ["p3", "Jack", "Pemberton", "2010-03-04", "M", "SS14 1AA"],
    ])
    summary = link_files(both, both, tmp_path / "dedupe.csv")
    pairs = {(r["left_id"], r["right_id"]) for r in csv.DictReader(
        (tmp_path / "dedupe.csv").open())}
    assert pairs == {("p1", "p3")}
    assert list(csv.DictReader(summary.review_out.open())) == []
    assert summary.twins_apart >= 1
