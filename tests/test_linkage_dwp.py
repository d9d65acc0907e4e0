"""DWP rows with nothing to check are trusted only as far as DWP's measured accuracy."""

import duckdb

from matchers.linkage import link_warehouse

FIRST = ["ANNA", "BELLA", "CARA", "DANA", "EMMA", "FAYE", "GINA", "HOPE", "IRIS", "JADE",
         "KATE", "LENA", "MAYA", "NINA", "OPAL", "PIA", "QUEENIE", "ROSA", "SARA", "TINA"]


def _con(n_verified: int) -> duckdb.DuckDBPyConnection:
    """Cohort people R00.., each returned by DWP with a benefit row that checks out,
    plus: E1 employment only (no NI in the case system), E2 employment whose NI
    is not the case system's, E3 employment under a reference where DWP's named
    row is someone else."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    members, benefits, jobs = [], [], []
    for i in range(n_verified):
        ni = f"AB{i:06d}C"
        members.append(f"('R{i:02d}', 'F{i}', 'parent_carer', '{FIRST[i]}', NULL, 'Stone', "
                       f"DATE '1980-01-{i + 1:02d}', 'F', NULL, NULL, NULL)")
        benefits.append(f"('R{i:02d}', '{ni}', '{FIRST[i]}', 'STONE', DATE '1980-01-{i + 1:02d}', "
                        f"NULL, 'JSA', DATE '2022-01-01')")
    members += [
        "('E1', 'G1', 'parent_carer', 'Mary', NULL, 'Quill', DATE '1975-05-05', 'F', NULL, "
        "NULL, NULL)",
        "('E2', 'G2', 'parent_carer', 'Nora', NULL, 'Quill', DATE '1976-06-06', 'F', NULL, "
        "NULL, 'CE111111A')",
        "('E3', 'G3', 'parent_carer', 'Olga', NULL, 'Quill', DATE '1977-07-07', 'F', NULL, "
        "NULL, NULL)",
    ]
    benefits.append("('E3', 'CE333333A', 'PETER', 'MARSH', DATE '1950-03-03', NULL, 'ESA', "
                    "DATE '2021-01-01')")
    jobs += ["('E1', 'CE000001A', 'EMP1', DATE '2023-01-01')",
             "('E2', 'CE222222A', 'EMP2', DATE '2023-01-01')",
             "('E3', 'CE333333A', 'EMP3', DATE '2023-01-01')"]
    con.execute(
        f"""CREATE TABLE staging.cohort_members AS SELECT * FROM (VALUES {', '.join(members)})
        t(person_ref, family_id, role, first_name, middle_names, last_name, dob, sex, upn,
          nhs_number, ni_number)""")
    con.execute(
        f"""CREATE TABLE staging.dwp_benefits AS SELECT * FROM (VALUES {', '.join(benefits)})
        t(match_ref, ni_number, first_name, last_name, dob, postcode, benefit, start_date)""")
    con.execute(
        f"""CREATE TABLE staging.dwp_employment AS SELECT * FROM (VALUES {', '.join(jobs)})
        t(match_ref, ni_number, employer_ref, start_date)""")
    return con


def _links(con):
    return {r[0]: (r[1], r[2], r[3]) for r in con.execute(
        "SELECT record_key, person_ref, match_method, match_probability "
        "FROM linkage.record_links WHERE extract = 'dwp_employment'").fetchall()}


def test_unverifiable_employment_follows_the_reference_when_dwp_is_accurate():
    con = _con(20)
    summary = link_warehouse(con)
    assert summary.dwp_accuracy == (20 + 1) / (21 + 2)  # 20 checked right, E3's wrong
    links = _links(con)
    ref, method, p = links["E1|EMP1|2023-01-01"]
    assert (ref, method) == ("E1", "dwp_match_ref_unverified") and p == summary.dwp_accuracy
    assert links["E2|EMP2|2023-01-01"][0] is None  # NI contradicts the case system
    assert links["E3|EMP3|2023-01-01"][0] is None  # DWP's named row there is someone else


def test_no_trust_when_dwp_is_often_wrong():
    con = _con(3)
    summary = link_warehouse(con)
    assert summary.dwp_accuracy < 0.9 and summary.dwp_unverified_edges == 0
    assert _links(con)["E1|EMP1|2023-01-01"][0] is None


def test_employment_of_a_verified_dwp_person_is_vouched_even_when_dwp_is_often_wrong():
    con = _con(3)
    # R00's benefit row checked out; an employment row under R00 with no NI number
    # belongs to the same DWP person, however often DWP is wrong elsewhere.
    con.execute("INSERT INTO staging.dwp_employment VALUES "
                "('R00', NULL, 'EMP9', DATE '2023-02-01'), "
                "('R01', 'CE777777A', 'EMP8', DATE '2023-02-01')")
    summary = link_warehouse(con)
    assert summary.dwp_accuracy < 0.9
    links = _links(con)
    assert links["R00|EMP9|2023-02-01"][:2] == ("R00", "dwp_match_ref_vouched")
    assert links["R00|EMP9|2023-02-01"][2] == 0.99
    assert links["E1|EMP1|2023-01-01"][0] is None      # nothing vouches for E1's row
    assert links["E3|EMP3|2023-01-01"][0] is None      # E3's DWP person is someone else
    assert links["R01|EMP8|2023-02-01"][0] is None     # another NI than the verified one


def _two_people_under_one_reference(stranger_ni: str | None) -> duckdb.DuckDBPyConnection:
    """W1 is returned twice: her own benefit row (no NI number, name and DOB check
    out) and a stranger's (another name, DOB and, when given, NI number); then an
    employment row with no NI number under W1."""
    con = _con(20)
    con.execute("INSERT INTO staging.cohort_members VALUES ('W1', 'G9', 'parent_carer', "
                "'Wendy', NULL, 'Hale', DATE '1984-08-22', 'F', NULL, NULL, NULL)")
    ni = "NULL" if stranger_ni is None else f"'{stranger_ni}'"
    con.execute("INSERT INTO staging.dwp_benefits VALUES "
                "('W1', NULL, 'WENDY', 'HALE', DATE '1984-08-22', NULL, 'JSA', "
                "DATE '2020-12-07'), "
                f"('W1', {ni}, 'OSCAR', 'DEAN', DATE '1989-09-26', NULL, 'ESA', "
                "DATE '2022-09-07')")
    con.execute("INSERT INTO staging.dwp_employment VALUES "
                "('W1', NULL, 'EMP7', DATE '2023-05-23')")
    return con


def test_a_stranger_with_an_ni_number_does_not_take_the_persons_employment():
    # DWP's rows for one found person share the NI field: the stranger's carry
    # his NI number, so the row without one goes with the verified rows without one.
    con = _two_people_under_one_reference("YE290799B")
    link_warehouse(con)
    assert _links(con)["W1|EMP7|2023-05-23"][:2] == ("W1", "dwp_match_ref_vouched")


def test_a_stranger_without_an_ni_number_leaves_the_employment_unlinked():
    con = _two_people_under_one_reference(None)
    link_warehouse(con)
    assert _links(con)["W1|EMP7|2023-05-23"][0] is None  # could be either of them
