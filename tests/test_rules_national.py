"""One definition of what is claimed: the plans are the rule files present, and the
national rules (eligibility, ranking, payment) are one validated file."""

from __future__ import annotations

import shutil
from pathlib import Path

from famlink.contract import PLANS, load_indicators
from rules.national import RULES_DIR, load_national, plan_names


def test_plans_are_the_rule_files_present(tmp_path: Path) -> None:
    assert PLANS == tuple(load_indicators())  # every plan of the contract has a rule file
    assert set(plan_names()) == set(PLANS)
    copy = tmp_path / "rules"
    copy.mkdir()
    for f in RULES_DIR.glob("*.yaml"):
        shutil.copy(f, copy / f.name)
    (copy / "cumbria.yaml").unlink()
    shutil.copy(RULES_DIR / "thurrock.yaml", copy / "essex.yaml")
    got = plan_names(copy)
    assert "cumbria" not in got and "essex" in got
    assert "national" not in got and "evidence_vocabulary" not in got


def test_the_return_pays_the_national_figure() -> None:
    from famlink.claims.returns import PAYMENT_GBP

    assert PAYMENT_GBP == load_national().results_payment_gbp == 800
