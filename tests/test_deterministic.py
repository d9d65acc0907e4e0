from linkage_fixtures import record_links, staging_con

from matchers.clustering import Edge, Node, cluster, forenames_compatible, jaro_winkler
from matchers.linkage import link_warehouse


def test_identifier_source_ref_and_dwp_links():
    con = staging_con()
    link_warehouse(con)
    links = record_links(con)
    assert links[("school_attendance", "X123456789010|2023/24|AUT")][1] == "P1"
    assert links[("school_attendance", "X123456789010|2023/24|SPR")][1] == "P1"
    assert links[("dwp_benefits", "P3|UC|2022-01-01")][1] == "P3"
    assert links[("dwp_employment", "P3|E1|2023-01-01")][1] == "P3"
    # DWP returned someone else for P4: name and DOB disagree, so no link.
    assert links[("dwp_benefits", "P4|JSA|2022-01-01")][1] is None
    assert links[("cohort_members", "P1")][2] == "cohort"


def test_twins_never_merged():
    con = staging_con()
    link_warehouse(con)
    links = record_links(con)
    assert links[("cohort_members", "P1")][0] != links[("cohort_members", "P2")][0]


def test_cluster_refuses_twin_merge_through_vague_record():
    groups = {}
    nodes = [
        Node(1, dob="2010-03-04", first_name="JACK", last_name="SMITH", cohort_ref="P1"),
        Node(2, dob="2010-03-04", first_name="JAMES", last_name="SMITH", cohort_ref="P2"),
        Node(3, dob="2010-03-04", first_name=None, last_name="SMITH"),
    ]
    # The nameless record fits both twins about as well: it goes to neither.
    edges = [Edge(1, 3, 0.97, "probabilistic"), Edge(2, 3, 0.95, "probabilistic")]
    roots, accepted, refused = cluster(nodes, edges, groups)
    assert len({roots[1], roots[2], roots[3]}) == 3
    assert {e.method for e in refused} == {"ambiguous"}
    # Far stronger evidence for one twin: it goes to that one, never to both.
    edges = [Edge(1, 3, 0.9999, "probabilistic"), Edge(2, 3, 0.95, "probabilistic")]
    roots, accepted, refused = cluster(nodes, edges, groups)
    assert roots[1] == roots[3] and roots[2] != roots[1]
    assert len(refused) == 1


def test_cluster_refuses_an_initial_bridging_twins_and_a_generation_gap():
    nodes = [
        Node(1, dob="2010-03-04", first_name="JACK", last_name="SMITH"),
        Node(2, dob="2010-03-04", first_name="J", last_name="SMITH"),
        Node(3, dob="2010-03-04", first_name="JAMES", last_name="SMITH"),
        Node(4, dob="1980-03-04", first_name="JACK", last_name="SMITH"),
        Node(5, dob=None, first_name="JACK", last_name="SMITH"),
        Node(6, dob="2010-04-03", first_name="JACK", last_name="SMITH"),
    ]
    edges = [Edge(1, 2, 0.9999, "probabilistic"), Edge(2, 3, 0.99, "probabilistic"),
             Edge(1, 5, 0.9999, "probabilistic"), Edge(4, 5, 0.95, "probabilistic"),
             Edge(1, 6, 0.98, "probabilistic")]
    roots, _, refused = cluster(nodes, edges, {})
    assert roots[1] == roots[2] == roots[5] == roots[6]  # a transposed DOB is a slip
    assert roots[3] != roots[1] and roots[4] != roots[1]  # twin; a generation apart
    assert len(refused) == 2


def test_forename_compatibility():
    groups = {"BILL": frozenset({"BILL", "WILLIAM"}), "WILLIAM": frozenset({"WILLIAM"})}
    assert forenames_compatible("BILL", "WILLIAM", groups)
    assert forenames_compatible("J", "JACK", groups)
    assert not forenames_compatible("JACK", "JAMES", groups)
    assert forenames_compatible("REECE", "RECE", groups)  # one edit, as in SQL
    assert abs(jaro_winkler("MARTHA", "MARHTA") - 0.9611) < 1e-3
