"""Doubtful links: a member's near-miss records, named the same at every run; decisions apply."""

from __future__ import annotations

import duckdb
from linkage_fixtures import record_links

from famlink.claims.review import record_decision_in
from matchers.linkage import REVIEW_LOW, REVIEW_METHOD, link_warehouse, load_review_settings

STAGING_SQL = """
CREATE SCHEMA IF NOT EXISTS staging;
CREATE TABLE staging.cohort_members AS SELECT * FROM (VALUES
  ('P1', 'F1', 'child', 'Gordon', NULL, 'Bell', DATE '2012-05-14', 'M', NULL, '9434765919', NULL),
  ('P2', 'F1', 'parent_carer', 'Sarah', NULL, 'Bell', DATE '1985-02-03', 'F', NULL, NULL, NULL)
) t(person_ref, family_id, role, first_name, middle_names, last_name, dob, sex, upn,
    nhs_number, ni_number);
CREATE TABLE staging.cohort_addresses AS SELECT * FROM (VALUES
  ('F1', '1 High Street', NULL, 'Basildon', 'SS14 1AA', NULL, DATE '2020-01-01', NULL)
) t(family_id, address_line1, address_line2, town, postcode, uprn, from_date, to_date);
CREATE TABLE staging.social_care_episodes AS SELECT * FROM (VALUES
  ('E1', 'SC-1', 'Gordon', 'Bell', DATE '2012-05-14', 'M', '9434765919', NULL, 'SS14 1AA'),
  ('E5', 'SC-2', 'Gordy', 'Bell', DATE '2012-05-14', 'M', NULL, NULL, 'SS14 1AA'),
  ('E6', 'SC-2', 'Gordy', 'Bell', DATE '2012-05-14', 'M', NULL, NULL, 'SS14 1AA')
) t(episode_id, child_id, first_name, last_name, dob, sex, nhs_number, upn, postcode);
"""


def linked() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(STAGING_SQL)
    link_warehouse(con)
    return con


def doubt(con: duckdb.DuckDBPyConnection, person_ref: str = "P1") -> list[tuple]:
    return con.execute(
        "SELECT pair_id, family_id, extract, record_key, reason, decision "
        "FROM linkage.doubtful_links WHERE person_ref = ? ORDER BY record_key", [person_ref]
    ).fetchall()


def test_review_floor_is_data() -> None:
    assert REVIEW_LOW == load_review_settings().review_floor == 0.5


def test_guarded_near_miss_is_doubtful_for_the_member_with_all_its_records() -> None:
    con = linked()
    links = record_links(con)
    assert links[("social_care_episodes", "E1")][1] == "P1"
    assert links[("social_care_episodes", "E5")][1] is None          # refused by the guard
    rows = doubt(con)
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("F1", "social_care_episodes", "E5"), ("F1", "social_care_episodes", "E6")]
    assert len({r[0] for r in rows}) == 1 and rows[0][4].startswith("twin guard")
    assert all(r[5] is None for r in rows)
    # every doubtful record is linked to no cohort member
    assert con.execute("SELECT count(*) FROM linkage.doubtful_links d JOIN linkage.record_links "
                       "l USING (extract, record_key) WHERE l.person_ref IS NOT NULL"
                       ).fetchall() == [(0,)]


def test_pair_id_is_stable_when_the_source_sends_more_records() -> None:
    first = doubt(linked())[0][0]
    con = duckdb.connect()
    con.execute(STAGING_SQL)
    con.execute("INSERT INTO staging.social_care_episodes VALUES ('E0', 'SC-2', 'Gordy', "
                "'Bell', DATE '2012-05-14', 'M', NULL, NULL, 'SS14 1AA')")   # a new first record
    link_warehouse(con)
    assert {r[0] for r in doubt(con)} == {first}
    assert [r[3] for r in doubt(con)] == ["E0", "E5", "E6"]


def test_decisions_apply_at_the_next_linkage() -> None:
    con = linked()
    pair_id = doubt(con)[0][0]
    record_decision_in(con, pair_id, "different", "reviewer", "another child")
    link_warehouse(con)
    assert {r[5] for r in doubt(con)} == {"different"}             # kept, marked, not linked
    assert record_links(con)[("social_care_episodes", "E5")][1] is None

    record_decision_in(con, pair_id, "same", "reviewer", "nickname; DOB and address agree")
    summary = link_warehouse(con)                                   # the latest decision wins
    assert summary.reviewed_same_edges >= 1
    links = record_links(con)
    assert {links[("social_care_episodes", k)][1] for k in ("E1", "E5", "E6")} == {"P1"}
    assert {links[("social_care_episodes", k)][2] for k in ("E5", "E6")} <= {
        REVIEW_METHOD, "source_ref"}
    assert doubt(con) == []

    record_decision_in(con, pair_id, "different", "auditor", "the merge was wrong")  # undone
    link_warehouse(con)
    assert record_links(con)[("social_care_episodes", "E5")][1] is None
    assert {r[5] for r in doubt(con)} == {"different"}
