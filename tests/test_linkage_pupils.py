"""A child's record under another surname joins the only pupil of its forename and DOB."""

import duckdb

from matchers.linkage import link_warehouse
from matchers.pupils import METHOD

PUPILS = [
    # upn, first, last, dob, sex, postcode
    ("A881018305213", "Karen", "Lloyd-Evans", "2010-06-24", "F", "SS11 2XX"),
    ("A881021869123", "Oliver", "Robinson", "2010-01-11", "M", "SS15 6AU"),
    # twins: one birthday, two forenames
    ("A881064594985", "Jack", "Stone", "2012-03-03", "M", "CO1 1AA"),
    ("A881077155122", "James", "Stone", "2012-03-03", "M", "CO1 1AA"),
    # two pupils of one forename and birthday
    ("A881106032739", "Amelia", "Hart", "2011-09-09", "F", "CM1 1AA"),
    ("A881110777776", "Amelia", "Cole", "2011-09-09", "F", "CM2 2BB"),
    ("A881134416509", "Ruby", "Fox", "2013-04-04", "F", "CM3 3CC"),
    ("A881149746295", "Noah", "Lane", "2009-02-02", "M", "CM4 4DD"),
]
MISSING = [
    # missing_id, child_id, first, last, dob
    ("MIS1", "C1", "Karen", "Williams", "2010-06-24"),     # surname changed: links
    ("MIS2", "C2", "Amelia", "Brown", "2011-09-09"),       # two Amelias: no link
    ("MIS3", "C3", "Jack", "Green", "2012-03-03"),         # fits Jack, not James: links
]
NOMINALS = [
    # incident_ref, nominal_id, first, last, dob, sex
    ("I1", "N1", "Oliver", "Mills", "2010-01-11", "M"),    # surname changed: links
    ("I2", "N2", "Noah", "Kent", "2009-02-02", "F"),       # recorded sex differs: no link
    ("I3", "N1", "Oliver", "Mills", None, "M"),            # same nominal, no DOB: source_ref
]


# A handful of records is no population for the model (its prior would be huge),
# so these tests take no probabilistic link: what links is the rule alone.
NO_MODEL = 1.01


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute(
        "CREATE TABLE staging.school_attendance (upn VARCHAR, first_name VARCHAR, "
        "last_name VARCHAR, dob DATE, sex VARCHAR, postcode VARCHAR, academic_year VARCHAR, "
        "term VARCHAR)")
    con.executemany("INSERT INTO staging.school_attendance VALUES (?, ?, ?, ?, ?, ?, "
                    "'2023/24', 'AUT')", PUPILS)
    con.execute(
        "CREATE TABLE staging.social_care_missing (missing_id VARCHAR, child_id VARCHAR, "
        "first_name VARCHAR, last_name VARCHAR, dob DATE)")
    con.executemany("INSERT INTO staging.social_care_missing VALUES (?, ?, ?, ?, ?)", MISSING)
    con.execute(
        "CREATE TABLE staging.police_nominals (incident_ref VARCHAR, nominal_id VARCHAR, "
        "first_name VARCHAR, last_name VARCHAR, dob DATE, sex VARCHAR)")
    con.executemany("INSERT INTO staging.police_nominals VALUES (?, ?, ?, ?, ?, ?)", NOMINALS)
    return con


def _person(con, extract: str, key: str) -> tuple[str, str]:
    return con.execute(
        "SELECT person_id, match_method FROM linkage.record_links WHERE extract = ? "
        "AND record_key LIKE ?", [extract, key + "%"]).fetchall()[0]


def _pupil(con, upn: str) -> str:
    return _person(con, "school_attendance", upn)[0]


def test_child_under_another_surname_joins_the_only_pupil_of_that_forename_and_dob():
    con = _con()
    summary = link_warehouse(con, threshold=NO_MODEL)
    assert summary.sole_pupil_edges >= 2
    person, method = _person(con, "social_care_missing", "MIS1")
    assert person == _pupil(con, "A881018305213") and method == METHOD
    # the nominal joins the pupil; its other incident, with no DOB, follows its id
    oliver = {_person(con, "police_nominals", k) for k in ("I1|N1", "I3|N1")}
    assert {p for p, _ in oliver} == {_pupil(con, "A881021869123")}
    assert METHOD in {m for (m,) in con.execute(
        "SELECT match_method FROM linkage.record_links WHERE person_id = ?",
        [_pupil(con, "A881021869123")]).fetchall()}
    # a twin's record joins the twin of its forename only
    assert _person(con, "social_care_missing", "MIS3")[0] == _pupil(con, "A881064594985")
    assert _pupil(con, "A881064594985") != _pupil(con, "A881077155122")


def test_no_link_when_the_pupil_is_not_the_only_candidate_or_something_disagrees():
    con = _con()
    link_warehouse(con, threshold=NO_MODEL)
    amelia = _person(con, "social_care_missing", "MIS2")[0]
    assert amelia not in (_pupil(con, "A881106032739"), _pupil(con, "A881110777776"))
    assert _person(con, "police_nominals", "I2|N2")[0] != _pupil(con, "A881149746295")


def test_two_children_of_one_system_are_not_joined_through_a_pupil():
    con = _con()
    # a second social care child with Karen's forename and DOB: two candidates now
    con.execute("INSERT INTO staging.social_care_missing VALUES "
                "('MIS9', 'C9', 'Karen', 'Price', DATE '2010-06-24')")
    link_warehouse(con, threshold=NO_MODEL)
    karen = _pupil(con, "A881018305213")
    assert _person(con, "social_care_missing", "MIS1")[0] != karen
    assert _person(con, "social_care_missing", "MIS9")[0] != karen
