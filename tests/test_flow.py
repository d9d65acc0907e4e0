"""The monthly run end to end: as a Prefect flow on a real (temporary) server, and locally."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from famlink.cli import app

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
runner = CliRunner()


def outcome_rows(warehouse: Path) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute("SELECT * FROM marts.problem_status ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_monthly_flow_runs_under_prefect(prefect_harness: None, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client  # noqa: F401  (server is up)

    from flows.monthly import monthly_run

    warehouse = tmp_path / "w.duckdb"
    state = monthly_run(extracts=SAMPLE, warehouse=warehouse, plan="countywide",
                        as_of=date(2023, 9, 30), return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    assert summary.ingest.loaded, "the first run loads deliveries"
    assert warehouse.exists() and not Path(str(warehouse) + ".building").exists()
    assert outcome_rows(warehouse), "outcomes were evaluated"


def test_same_as_of_twice_gives_identical_outcomes_and_no_new_claims(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    args = ["run", "--extracts", str(SAMPLE), "--warehouse", str(warehouse),
            "--plan", "countywide", "--as-of", "2024-06-30", "--no-prefect"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "families in the cohort" in first.output
    before = outcome_rows(warehouse)
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert outcome_rows(warehouse) == before
    con = duckdb.connect(str(warehouse), read_only=True)
    claimed = con.execute("SELECT family_id, count(*) FROM claims.ledger "
                          "GROUP BY ALL HAVING count(*) > 1").fetchall()
    runs = con.execute("SELECT new_claims FROM claims.runs ORDER BY run_id").fetchall()
    con.close()
    assert claimed == []
    assert runs[-1] == (0,)


def test_fatal_input_leaves_published_warehouse_unchanged(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE / "2023-01", drop / "2023-01")
    shutil.copytree(SAMPLE / "2023-02", drop / "2023-02")
    warehouse = tmp_path / "w.duckdb"
    base = ["run", "--extracts", str(drop), "--warehouse", str(warehouse), "--plan",
            "thurrock", "--no-prefect"]
    assert runner.invoke(app, [*base, "--as-of", "2023-01-31"]).exit_code == 0
    before = hashlib.sha256(warehouse.read_bytes()).hexdigest()
    broken = drop / "2023-02" / "cohort_members.csv"
    broken.write_text("person_ref;family_id\nP1;F1\n", encoding="utf-8")
    result = runner.invoke(app, [*base, "--as-of", "2023-02-28"])
    assert result.exit_code == 1
    assert "cohort_members.csv" in result.output
    assert hashlib.sha256(warehouse.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("plan", ["nowhere"])
def test_unknown_plan_is_refused(plan: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--extracts", str(SAMPLE), "--warehouse",
                                 str(tmp_path / "w.duckdb"), "--plan", plan,
                                 "--as-of", "2024-01-31"])
    assert result.exit_code == 2
    assert "countywide" in result.output
