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


def _scored(rows: list[list[str]], tmp_path: Path, location: str | None = None) -> dict:
    """{(id, id): match weight} of every blocked pair of ``rows`` under the committed
    model; the row with id ``location`` has its postcode marked an incident location."""
    import duckdb

    from matchers.pairs import _person_table, read_people_csv
    from matchers.probabilistic import load_model, predict_pairs
    from matchers.standardise import install_standardise_macros

    con = duckdb.connect()
    install_standardise_macros(con)
    _person_table(con, read_people_csv(_write(tmp_path / "p.csv", rows)), None)
    if location:
        con.execute("UPDATE _pairs_std SET postcode_is_location = true WHERE orig_id = ?",
                    [location])
    settings, _ = load_model(term_frequencies=False)
    predict_pairs(con, "_pairs_std", settings, "_got", min_probability=1e-12)
    got = con.execute("""SELECT l.orig_id, r.orig_id, match_weight FROM _got
        JOIN _pairs_std l ON l.unique_id = unique_id_l
        JOIN _pairs_std r ON r.unique_id = unique_id_r""").fetchall()
    return {tuple(sorted((a, b))): w for a, b, w in got}


def test_record_without_dob_or_postcode_meets_its_names(tmp_path):
    # a police nominal with names only: no DOB, no postcode, no address to block on
    got = _scored([
        ["s1", "Dafydd", "Bailey", "2008-06-26", "M", "CM8 6RP"],
        ["p1", "Dafydd", "Bailey", "", "M", ""],
        ["p2", "Dafydd", "Jones", "", "M", ""],
    ], tmp_path)
    assert ("p1", "s1") in got
    assert ("p2", "s1") not in got  # the surname differs: not this rule's pair


def test_incident_location_elsewhere_is_no_evidence(tmp_path):
    # where an incident happened says nothing for or against a person: the same
    # weight as no postcode at all (it used to weigh about -4 bits)
    rows = [
        ["s1", "Noah", "Simpson", "2017-12-09", "M", "CM8 2UE"],
        ["p1", "Noah", "Simpson", "2017-12-09", "M", "SS1 9NS"],
        ["p2", "Noah", "Simpson", "2017-12-09", "M", ""],
    ]
    located = _scored(rows, tmp_path, location="p1")
    assert located[("p1", "s1")] == located[("p2", "s1")]
    home = _scored(rows, tmp_path)  # a home postcode elsewhere does count against
    assert home[("p1", "s1")] < located[("p1", "s1")]
