"""``famlink link`` never crashes on messy, invalid or foreign values."""

import csv
from pathlib import Path

from matchers.pairs import link_files, read_people_csv


def _write(path: Path, header: list[str], rows: list[list[str]], **kw) -> Path:
    with path.open("w", newline="", encoding=kw.get("encoding", "utf-8")) as f:
        w = csv.writer(f, lineterminator=kw.get("eol", "\n"))
        w.writerow(header)
        w.writerows(rows)
    return path


def _pairs(out: Path) -> set[tuple[str, str]]:
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        assert 0.0 <= float(r["match_probability"]) <= 1.0
    return {(r["left_id"], r["right_id"]) for r in rows}


def test_messy_foreign_and_invalid_values_are_missing_or_text(tmp_path):
    header = ["id", "first_name", "middle_names", "last_name", "dob", "sex", "postcode",
              "address", "upn", "nhs_number", "ni_number"]
    left = _write(tmp_path / "l.csv", header, [
        ["l1", "Zoë", "", "Brontë-Smith", "1990-02-14", "F", "SS17 8AA", "1 Mill Rd",
         "", "943 476 5919", "QQ 12 34 56 C"],
        ["l2", "Łukasz", "", "Wiśniewski", "2023-02-30", "M", "00-950 Warszawa", "", "", "", ""],
        ["l3", "李", "", "王", "1985-07-01", "", "100000", "", "", "", ""],
        ["l4", "", "", "", "", "", "", "", "", "", ""],
        ["l5", "Mr  JOHN  ", "", " o'neill ", "1975-13-45", "male", "D02 X285", "",
         "not-a-upn", "12345", "AB123"],
        ["l6", "Siobhán", "Áine", "Ó Súilleabháin", "31/12/1999", "X", "BT1 1AA", "", "",
         "", ""],
    ])
    right = _write(tmp_path / "r.csv", header, [
        ["r1", "ZOE", "", "BRONTE SMITH", "1990-02-14", "f", "ss178aa", "1 MILL ROAD", "", "",
         ""],
        ["r2", "Lukasz", "", "Wisniewski", "30/02/2023", "M", "00950", "", "", "", ""],
        ["r3", "???", "", "!!!", "0000-00-00", "?", "???", "", "", "", ""],
        ["r4", "Siobhan", "", "O Suilleabhain", "1999-12-31", "F", "bt11aa", "", "", "", ""],
        ["r5", "a" * 300, "", "b" * 300, "9999-12-31", "U", "Z" * 50, "", "", "", ""],
    ])
    out = tmp_path / "pairs.csv"
    summary = link_files(left, right, out)
    pairs = _pairs(out)
    assert ("l1", "r1") in pairs  # accents, hyphens, case, postcode spacing
    assert ("l6", "r4") in pairs  # Irish names without their fadas, d/m/Y date
    assert not {p for p in pairs if p[0] in ("l4", "l3") or p[1] in ("r3", "r5")}
    assert summary.left_rows == 6 and summary.right_rows == 5


def test_missing_optional_columns_extra_columns_bom_and_crlf(tmp_path):
    left = _write(tmp_path / "l.csv", ["id", "first_name", "last_name"],
                  [["a", "Margaret", "Thornbury"], ["b", "Ahmed", "Khan"]],
                  encoding="utf-8-sig", eol="\r\n")
    right = _write(tmp_path / "r.csv",
                   ["ID", "Forename", "Surname", "Date of Birth", "Gender", "Shoe size"],
                   [["x", "MARGARET", "THORNBURY", "1962-04-09", "F", "5"],
                    ["y", "Ahmad", "Khan", "", "", ""]])
    df = read_people_csv(right)
    assert list(df.columns)[:4] == ["id", "first_name", "middle_names", "last_name"]
    assert df.loc[0, "dob"] == "1962-04-09" and df.loc[1, "dob"] is None
    out = tmp_path / "pairs.csv"
    link_files(left, right, out)
    assert _pairs(out) <= {("a", "x"), ("b", "y")}


def test_empty_and_header_only_files(tmp_path):
    header = ["id", "first_name", "last_name", "dob", "sex", "postcode"]
    full = _write(tmp_path / "full.csv", header, [["a", "Ann", "Lee", "1990-01-01", "F", ""]])
    header_only = _write(tmp_path / "header.csv", header, [])
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,first_name,last_name,dob\nq,Ann,Lee,1990-01-01,extra,fields\n"
                      "r,Ann\n\xff\xfe,bad bytes\n", encoding="latin-1")
    for left, right in ((full, header_only), (full, empty), (empty, empty), (full, ragged)):
        out = tmp_path / f"{left.stem}-{right.stem}.csv"
        link_files(left, right, out)
        assert out.read_text(encoding="utf-8").splitlines()[0] == \
            "left_id,right_id,match_probability"


def test_swapped_names_with_a_transposed_dob_are_found(tmp_path):
    header = ["id", "first_name", "last_name", "dob", "sex", "postcode"]
    left = _write(tmp_path / "l.csv", header, [
        ["a1", "Eleanor", "Whitfield", "1975-12-01", "F", "RM17 6BB"],
        ["a2", "Margaret", "Thornbury", "1962-04-09", "F", "SS17 8AA"],
        ["a3", "Jack", "Pemberton", "2010-03-04", "M", ""],
    ])
    right = _write(tmp_path / "r.csv", header, [
        ["b1", "Whitfield", "Eleanor", "1975-01-12", "F", "CM1 1AA"],
        ["b2", "THORNBURY", "margaret", "1962-09-04", "", ""],
        ["b3", "Pemberton", "James", "2010-04-03", "M", ""],  # his twin, swapped and slipped
    ])
    out = tmp_path / "pairs.csv"
    link_files(left, right, out)
    assert _pairs(out) == {("a1", "b1"), ("a2", "b2")}
