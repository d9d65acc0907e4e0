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
