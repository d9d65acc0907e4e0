"""Household linkage: police incidents to cohort families by address and date.

An incident belongs to a family when it happened at one of the family's
addresses while the family lived there (from/to dates of that address). The
UPRN decides when both sides carry a valid one; otherwise the normalised first
address line and postcode must both agree. A house the family has left is not
their problem any more, so the dates matter as much as the address.
"""

from __future__ import annotations

import duckdb

from matchers.standardise import install_standardise_macros

HOUSEHOLD_LINKS_SQL = """
CREATE OR REPLACE TABLE linkage.household_links AS
WITH addr AS (
    SELECT family_id, fl_uprn(CAST(uprn AS VARCHAR)) AS uprn,
           fl_address(address_line1) AS address, fl_postcode(postcode) AS postcode,
           from_date, to_date
    FROM staging.cohort_addresses
), inc AS (
    SELECT incident_ref, CAST(reported_at AS DATE) AS reported_on,
           fl_uprn(CAST(uprn AS VARCHAR)) AS uprn, fl_address(address_line1) AS address,
           fl_postcode(postcode) AS postcode
    FROM staging.police_incidents
), matched AS (
    SELECT i.incident_ref, a.family_id, 'uprn' AS match_method,
           a.from_date AS address_from, a.to_date AS address_to, i.reported_on
    FROM inc i JOIN addr a ON i.uprn = a.uprn
    UNION ALL
    SELECT i.incident_ref, a.family_id, 'address', a.from_date, a.to_date, i.reported_on
    FROM inc i JOIN addr a ON i.address = a.address AND i.postcode = a.postcode
    WHERE i.uprn IS NULL OR a.uprn IS NULL
)
SELECT DISTINCT ON (incident_ref, family_id)
       incident_ref, family_id, match_method, address_from, address_to
FROM matched
WHERE reported_on >= address_from AND (address_to IS NULL OR reported_on <= address_to)
ORDER BY incident_ref, family_id, match_method DESC, address_from DESC
"""


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'staging' AND table_name = ?",
            [table],
        ).fetchall()[0][0]
    )


def link_households(con: duckdb.DuckDBPyConnection) -> int:
    """Create ``linkage.household_links``; returns its row count."""
    install_standardise_macros(con)
    con.execute("CREATE SCHEMA IF NOT EXISTS linkage")
    if not (_exists(con, "cohort_addresses") and _exists(con, "police_incidents")):
        con.execute(
            "CREATE OR REPLACE TABLE linkage.household_links (incident_ref VARCHAR, "
            "family_id VARCHAR, match_method VARCHAR, address_from DATE, address_to DATE)"
        )
        return 0
    con.execute(HOUSEHOLD_LINKS_SQL)
    return con.execute("SELECT count(*) FROM linkage.household_links").fetchall()[0][0]
