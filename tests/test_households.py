from linkage_fixtures import staging_con

from matchers.households import link_households


def test_incidents_link_within_address_dates():
    con = staging_con()
    link_households(con)
    rows = con.execute(
        "SELECT incident_ref, family_id, match_method FROM linkage.household_links ORDER BY 1"
    ).fetchall()
    # I1 by UPRN; I3 by address while F2 lived there; I2 after they left; I4 before F1 came.
    assert rows == [("I1", "F1", "uprn"), ("I3", "F2", "address")]
