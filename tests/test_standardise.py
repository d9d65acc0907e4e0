import duckdb

from matchers.standardise import (
    install_standardise_macros,
    name_groups,
    standardise_name,
    standardise_postcode,
    standardise_sql,
)


def test_names_lose_case_accents_titles_and_punctuation():
    assert standardise_name("  mr John-Paul o'Brien ") == ["JOHN", "PAUL", "OBRIEN"]
    assert standardise_name("Zoë") == ["ZOE"]
    assert standardise_name("J.") == ["J"]
    assert standardise_name("unknown") == []
    assert standardise_name(None) == []
    assert standardise_name("李") == []


def test_postcodes_normalised_and_foreign_kept_as_text():
    assert standardise_postcode("ss178aa") == "SS17 8AA"
    assert standardise_postcode(" SS17 8AA") == "SS17 8AA"
    assert standardise_postcode("ec1a1bb") == "EC1A 1BB"
    assert standardise_postcode("75001 Paris") == "75001 PARIS"
    assert standardise_postcode(None) is None


def test_nickname_groups_are_shared():
    assert set(name_groups("BILL")) & set(name_groups("WILL"))
    assert "ALEXANDRA" in name_groups("SANDY")


def test_standardise_sql_splits_names_and_invalidates_identifiers():
    con = duckdb.connect()
    install_standardise_macros(con)
    con.execute(
        """CREATE TABLE raw AS SELECT 'r1' AS record_id, 'Mary Ann' AS first_name,
        NULL AS middle_names, 'Smith-Jones' AS last_name, DATE '2001-02-03' AS dob, 'f' AS sex,
        'ss17 8aa' AS postcode, NULL AS address, 'X123' AS upn, '943 476 5919' AS nhs_number,
        'QQ123456C' AS ni_number"""
    )
    row = con.execute(f"SELECT * FROM ({standardise_sql('raw')})").df().iloc[0]
    assert row.first_name == "MARY" and row.middle_names == "ANN"
    assert row.last_name == "SMITHJONES" and list(row.last_name_tokens) == ["SMITH", "JONES"]
    assert row.sex == "F" and row.postcode == "SS17 8AA" and row.postcode_district == "SS17"
    assert row.upn is None and row.nhs_number == "9434765919" and row.ni_number is None
    assert row.dob_str == "2001-02-03"


NAME_CASES = [
    ("Mrs  Siobhán NÍ BHRIAIN", ["SIOBHAN", "NI", "BHRIAIN"]),
    ("dr. a. smith", ["A", "SMITH"]),
    ("D'Souza", ["DSOUZA"]),
    ("o’neill", ["ONEILL"]),
    ("Smith-Jones", ["SMITH", "JONES"]),
    ("  JOHN   PAUL ", ["JOHN", "PAUL"]),
    ("Miss Zoë-Chloé", ["ZOE", "CHLOE"]),
    ("NOT KNOWN", []),
    ("", []),
]


def test_python_and_sql_name_rules_agree() -> None:
    con = duckdb.connect()
    install_standardise_macros(con)
    for raw, expected in NAME_CASES:
        assert standardise_name(raw) == expected, raw
        (sql,) = con.execute("SELECT fl_name_tokens(?)", [raw]).fetchall()[0]
        assert list(sql) == expected, raw


def test_dates_sexes_and_addresses() -> None:
    con = duckdb.connect()
    install_standardise_macros(con)
    got = con.execute("""SELECT fl_parse_date('2012-03-04'), fl_parse_date('04/03/2012'),
        fl_parse_date('20120304'), fl_parse_date('2023-02-30'), fl_parse_date('next week'),
        fl_sex('female'), fl_sex(' m '), fl_sex('X'),
        fl_address('12, Church Rd.'), fl_address('12 CHURCH ROAD')""").fetchall()[0]
    iso = "2012-03-04"
    assert [str(d) for d in got[:3]] == [iso, iso, iso]
    assert got[3] is None and got[4] is None          # not real dates: missing, never a crash
    assert got[5:8] == ("F", "M", None)
    assert got[8] == got[9] == "12 CHURCH ROAD"


def test_postcode_parts() -> None:
    con = duckdb.connect()
    install_standardise_macros(con)
    got = con.execute("""SELECT fl_postcode_district('ss17 8aa'), fl_postcode_sector('SS178AA'),
        fl_postcode_uk('2000'), fl_postcode('2000')""").fetchall()[0]
    assert got == ("SS17", "SS17 8", None, "2000")
