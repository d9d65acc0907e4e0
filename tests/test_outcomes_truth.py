"""Outcome statuses and claims against the generator's truth, on a small county.

The fast version of ``benchmarks/outcomes.py``: for four plans, generate 40
families, run the monthly job at the end of the data and require no false
claim and near-total agreement on each identified problem's claimability.
Each plan costs ~15 s, mostly fixed pipeline overhead; central_bedfordshire is
left to the benchmark (and its rule fixtures) to keep this under a minute.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import outcomes_benchmark

from famlink.contract import PLANS
from famlink.pipeline import RunRequest
from famlink_generator import GeneratorConfig, generate_county
from flows.monthly import run_monthly_local

bench = outcomes_benchmark()

END_OF_DATA = date(2024, 12, 31)


@pytest.mark.parametrize("plan", PLANS)
def test_statuses_and_claims_match_truth(plan: str, tmp_path: Path) -> None:
    drop, warehouse = tmp_path / "drop", tmp_path / "warehouse.duckdb"
    generate_county(GeneratorConfig(out_dir=drop, plan=plan, seed=3, residents=900,
                                    cohort_families=40))
    run_monthly_local(RunRequest(extracts=drop, warehouse=warehouse, plan=plan,
                                 as_of=END_OF_DATA))
    j = bench.judge_run(drop, warehouse, END_OF_DATA)
    assert j.total >= 60, j.matrix
    assert not j.false_claims, (j.false_claims, j.wrong)
    assert j.agree / j.total >= 0.97, (j.agree, j.total, j.wrong)
    assert j.recall >= 0.9, (j.missed_claims, j.wrong)
