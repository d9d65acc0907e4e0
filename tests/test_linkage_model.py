"""The committed person model: it loads, matches the code, and links a fixture."""

import json

import pytest
from linkage_fixtures import record_links, staging_con

from matchers.comparisons import person_settings
from matchers.linkage import link_warehouse
from matchers.probabilistic import DEFAULT_MODEL_PATH, META_KEY, load_model


def test_committed_model_is_trained_and_current():
    assert DEFAULT_MODEL_PATH.exists(), "train it: famlink train-linkage"
    model = json.loads(DEFAULT_MODEL_PATH.read_text())
    meta = model[META_KEY]
    assert 0 < meta["prior_rule_recall"] <= 1 and meta["trained_records"] > 1000
    # the levels the model was trained with are the levels the code defines
    code = person_settings()["comparisons"]
    assert [c["output_column_name"] for c in model["comparisons"]] == [
        c["output_column_name"] for c in code]
    for cm, cc in zip(model["comparisons"], code, strict=True):
        assert [lv["sql_condition"] for lv in cm["comparison_levels"]] == [
            lv["sql_condition"] for lv in cc["comparison_levels"]], cm["output_column_name"]
        for lv in cm["comparison_levels"]:
            if not lv.get("is_null_level"):
                assert 0 < lv["m_probability"] <= 1 and 0 < lv["u_probability"] <= 1
    settings, meta = load_model()
    assert META_KEY not in settings and meta["prior_rule_recall"] > 0


def test_link_warehouse_with_committed_model_links_fixture(monkeypatch):
    from splink.internals.linker_components.training import LinkerTraining

    def no_training(*_a, **_k):
        raise AssertionError("a warehouse this small must be scored with the committed model")

    for name in ("estimate_u_using_random_sampling",
                 "estimate_parameters_using_expectation_maximisation",
                 "estimate_probability_two_random_records_match"):
        monkeypatch.setattr(LinkerTraining, name, no_training)
    con = staging_con()
    summary = link_warehouse(con)
    assert summary.probabilistic_edges > 0
    links = record_links(con)
    # nickname (Liz / Elizabeth), same DOB, no address: P3
    assert links[("police_nominals", "I1|N1")][1] == "P3"
    # surname and forename swapped: P4
    assert links[("police_nominals", "I3|N3")][1] == "P4"
    # nickname (Bill) with the day and month of birth transposed: P4
    assert links[("police_nominals", "I2|N2")][1] == "P4"
    # a stranger stays a stranger; twins stay two people
    assert links[("police_nominals", "I4|N9")][1] is None
    assert links[("cohort_members", "P1")][0] != links[("cohort_members", "P2")][0]
    assert links[("school_attendance", "K123456789020|2023/24|AUT")][1] != "P1"


@pytest.mark.parametrize("missing", ["police_incidents", "cohort_addresses"])
def test_link_warehouse_without_optional_extracts(missing):
    con = staging_con()
    con.execute(f"DROP TABLE staging.{missing}")
    link_warehouse(con)
    assert con.execute("SELECT count(*) FROM linkage.record_links").fetchall()[0][0] > 0


def test_link_warehouse_is_repeatable():
    def run():
        con = staging_con()
        link_warehouse(con)
        return con.execute("SELECT * FROM linkage.record_links ORDER BY record_id").fetchall()

    assert run() == run()
