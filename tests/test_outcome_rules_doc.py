"""docs/outcome_rules.md is generated from rules/<plan>.yaml: the committed doc is current."""

from __future__ import annotations

from rules import docs


def test_committed_doc_equals_a_fresh_build() -> None:
    fresh = docs.build()
    committed = docs.DOC_PATH.read_text(encoding="utf-8")
    assert committed == fresh, "docs/outcome_rules.md is stale: run python -m rules.docs"


def test_doc_covers_every_plan_and_outcome_line() -> None:
    from famlink.contract import PLANS
    from rules.engine import load_plan

    text = docs.build()
    for name in PLANS:
        assert f"## {name}\n" in text
        for rule in load_plan(name).outcome_lines():
            assert f"| {rule.id} |" in text, (name, rule.id)
