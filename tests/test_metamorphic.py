"""Metamorphic tests: how a county records evidence must not change what is claimed.

For every plan, one small county (same seed, so the same families, problems
and true claims) is written under the default conventions and under one
changed convention at a time (generator/famlink_generator/conventions.py):

- outcome_code only on professional statements (the code on engagement,
  programme and Family Star rows is redundant with what the row is);
- Family Star Plus domains written by name as case systems spell them;
- a person's later records under a second source id of the same service (a
  re-referral under a second social-care child_id with a nickname, a second
  YOT person id).

The monthly job runs on each. Per family the decision must be the base run's
(same claim type), or ``held_for_review`` (doubt holds the claim); never a
claim the base run did not make, never a false claim against the truth.
"""

from __future__ import annotations

import fcntl
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import outcomes_benchmark

from famlink.contract import PLANS
from famlink.pipeline import RunRequest
from famlink_generator import GeneratorConfig, generate_county
from flows.monthly import run_monthly_local

bench = outcomes_benchmark()

MONTHS = 18
AS_OF = date(2024, 6, 30)  # the end of 18 months from 2023-01
VARIANTS: dict[str, dict[str, str]] = {
    "code_only_on_statements": {"outcome_code": "statements_only"},
    "star_domain_names": {"star_domain": "name_variants"},
    "split_source_ids": {"split_ids": "both"},
}
# the files each variant rewrites (it must rewrite something, or the test proves nothing)
TOUCHES = {"code_only_on_statements": ("practitioner_evidence.csv",),
           "star_domain_names": ("practitioner_evidence.csv",),
           "split_source_ids": ("social_care_episodes.csv", "social_care_missing.csv",
                                "yot_offences.csv")}
HELD = "held_for_review"
CLAIMED = ("claimed", "already_claimed")


def _run(tmp: Path, plan: str, override: dict[str, str]) -> tuple[Path, Path]:
    drop, warehouse = tmp / "drop", tmp / "warehouse.duckdb"
    generate_county(GeneratorConfig(out_dir=drop, plan=plan, seed=4, residents=700,
                                    cohort_families=34, months=MONTHS,
                                    conventions_override=override))
    run_monthly_local(RunRequest(extracts=drop, warehouse=warehouse, plan=plan, as_of=AS_OF))
    return drop, warehouse


def decisions(warehouse: Path) -> dict[str, tuple[str, str | None]]:
    """family_id -> (decision, claim_type) at the warehouse's latest run."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT family_id, decision, claim_type FROM claims.assessments "
            "WHERE run_id = (SELECT max(run_id) FROM claims.assessments)").fetchall()
    finally:
        con.close()
    return {f: (d, t if d in CLAIMED else None) for f, d, t in rows}


@pytest.fixture(scope="session")
def base_runs(tmp_path_factory: pytest.TempPathFactory, worker_id: str):  # noqa: ANN201
    """Each plan's default-conventions run, made once per session, shared by xdist workers.

    The first worker to need a plan makes it under an flock; the others read it.
    """
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # shared by the workers of one session
    root = root / "metamorphic-base"
    root.mkdir(exist_ok=True)

    def get(plan: str) -> tuple[Path, dict[str, tuple[str, str | None]]]:
        here, done = root / plan, root / f"{plan}.json"
        with open(root / f"{plan}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                here.mkdir(exist_ok=True)
                _, warehouse = _run(here, plan, {})
                done.write_text(json.dumps(decisions(warehouse)), encoding="utf-8")
        got = json.loads(done.read_text("utf-8"))
        return here / "drop", {f: (d, t) for f, (d, t) in got.items()}
    return get


def _cases() -> list[object]:
    out = []
    for plan in PLANS:
        for name in VARIANTS:
            out.append(pytest.param(plan, name, id=f"{plan}-{name}"))
    return out


@pytest.mark.parametrize(("plan", "variant"), _cases())
def test_convention_changes_no_claim(plan: str, variant: str, base_runs, tmp_path: Path
                                     ) -> None:  # noqa: ANN001
    base_drop, base = base_runs(plan)
    drop, warehouse = _run(tmp_path, plan, VARIANTS[variant])
    for name in ("outcomes.csv", "employment.csv", "people.csv"):
        assert (drop / "_truth" / name).read_bytes() == \
            (base_drop / "_truth" / name).read_bytes(), "same county, same truth"
    last = sorted(p.name for p in drop.iterdir() if p.name[:2] == "20")[-1]
    assert any((drop / last / f).read_bytes() != (base_drop / last / f).read_bytes()
               for f in TOUCHES[variant]), f"{variant} changed nothing in {TOUCHES[variant]}"
    got = decisions(warehouse)
    assert set(got) == set(base)
    base_claims = {f for f, (d, _t) in base.items() if d in CLAIMED}
    assert len(base_claims) >= 3, "the base run claims something to test against"
    changed = {f: (base[f], got[f]) for f in base
               if got[f] != base[f] and got[f][0] != HELD}
    new_claims = {f for f, (d, _t) in got.items() if d in CLAIMED} - base_claims
    judged = bench.judge_run(drop, warehouse, AS_OF)
    assert not new_claims, f"claims the base run did not make: {sorted(new_claims)}"
    assert not judged.false_claims, f"false claims: {judged.false_claims}"
    assert not changed, f"decisions changed (base, {variant}): {changed}"
