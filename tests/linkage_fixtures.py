"""Small hand-made staging tables for the linkage tests (no ingest needed)."""

from __future__ import annotations

import duckdb

STAGING_SQL = """
CREATE SCHEMA IF NOT EXISTS staging;
CREATE TABLE staging.cohort_members AS SELECT * FROM (VALUES
  ('P1', 'F1', 'child', 'Jack', NULL, 'Smith', DATE '2010-03-04', 'M', 'X123456789010', NULL, NULL),
  ('P2', 'F1', 'child', 'James', NULL, 'Smith', DATE '2010-03-04', 'M', NULL, NULL, NULL),
  ('P3', 'F1', 'parent_carer', 'Elizabeth', 'Ann', 'Smith', DATE '1985-11-20', 'F', NULL,
   NULL, 'AB123456C'),
  ('P4', 'F2', 'parent_carer', 'William', NULL, 'O''Brien', DATE '1979-01-02', 'M', NULL,
   NULL, 'CE123456A')
) t(person_ref, family_id, role, first_name, middle_names, last_name, dob, sex, upn,
    nhs_number, ni_number);
CREATE TABLE staging.cohort_addresses AS SELECT * FROM (VALUES
  ('F1', '12 High Street', NULL, 'Basildon', 'SS14 1AA', '100001', DATE '2020-01-01', NULL),
  ('F2', '3 Mill Rd', NULL, 'Grays', 'RM17 5AA', NULL, DATE '2019-01-01', DATE '2023-06-30'),
  ('F2', '9 Oak Close', NULL, 'Grays', 'RM17 6BB', NULL, DATE '2023-07-01', NULL)
) t(family_id, address_line1, address_line2, town, postcode, uprn, from_date, to_date);
CREATE TABLE staging.school_attendance AS SELECT * FROM (VALUES
  ('X123456789010', 'JACK', 'SMITH', DATE '2010-03-04', 'M', 'ss141aa', 'U1', 'primary',
   '2023/24', 'AUT'),
  ('X123456789010', 'JACK', 'SMITH', DATE '2010-03-04', 'M', 'ss141aa', 'U1', 'primary',
   '2023/24', 'SPR'),
  ('K123456789020', 'Jamie', 'Smith', DATE '2010-03-04', 'M', 'SS14 1AA', 'U1', 'primary',
   '2023/24', 'AUT')
) t(upn, first_name, last_name, dob, sex, postcode, school_urn, phase, academic_year, term);
CREATE TABLE staging.police_nominals AS SELECT * FROM (VALUES
  ('I1', 'N1', 'VICTIM', 'Liz', 'SMITH', DATE '1985-11-20', 'F'),
  ('I2', 'N2', 'SUSPECT', 'Bill', 'OBRIEN', DATE '1979-02-01', 'M'),
  ('I3', 'N3', 'SUSPECT', 'Obrien', 'William', DATE '1979-01-02', 'M'),
  ('I4', 'N9', 'WITNESS', 'Zara', 'Quint', DATE '1990-05-05', 'F')
) t(incident_ref, nominal_id, role, first_name, last_name, dob, sex);
CREATE TABLE staging.dwp_benefits AS SELECT * FROM (VALUES
  ('P3', 'AB123456C', 'ELIZABETH', 'SMITH', DATE '1985-11-20', 'SS14 1AA', 'UC',
   DATE '2022-01-01'),
  ('P4', NULL, 'Wilma', 'Brown', DATE '1960-01-01', NULL, 'JSA', DATE '2022-01-01')
) t(match_ref, ni_number, first_name, last_name, dob, postcode, benefit, start_date);
CREATE TABLE staging.dwp_employment AS SELECT * FROM (VALUES
  ('P3', 'AB123456C', 'E1', DATE '2023-01-01')
) t(match_ref, ni_number, employer_ref, start_date);
CREATE TABLE staging.police_incidents AS SELECT * FROM (VALUES
  ('I1', TIMESTAMP '2023-02-01 10:00:00', 'DOMESTIC', 'Y', '12 HIGH ST', 'Basildon',
   'SS141AA', '100001'),
  ('I2', TIMESTAMP '2023-08-01 10:00:00', 'ASB', 'N', '3 Mill Road', 'Grays', 'RM17 5AA', NULL),
  ('I3', TIMESTAMP '2023-01-01 10:00:00', 'ASB', 'N', '3 MILL ROAD', 'Grays', 'rm175aa', NULL),
  ('I4', TIMESTAMP '2019-01-01 10:00:00', 'ASB', 'N', '12 High Street', 'Basildon',
   'SS14 1AA', NULL)
) t(incident_ref, reported_at, category, domestic_flag, address_line1, town, postcode, uprn);
"""


def staging_con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(STAGING_SQL)
    return con


def record_links(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], tuple]:
    """(extract, record_key) -> (person_id, person_ref, match_method) after linkage."""
    return {
        (r[0], r[1]): (r[2], r[3], r[4])
        for r in con.execute(
            "SELECT extract, record_key, person_id, person_ref, match_method "
            "FROM linkage.record_links"
        ).fetchall()
    }
