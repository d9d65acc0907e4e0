"""The generator's drop folder loads with exactly the faults it planted, nothing else."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import duckdb
import pytest
from test_generate import ALL_VARIED

from famlink.pipeline import RunRequest, build_staging, ingest_extracts
from famlink.warehouse import build_then_publish
from famlink_generator import GeneratorConfig, generate_county


@pytest.mark.parametrize("conventions", [None, ALL_VARIED], ids=["default", "varied"])
def test_generated_county_rejects_only_planted_faults(tmp_path: Path,
                                                      conventions: dict | None) -> None:
    """Under the default conventions and under every non-default one."""
    drop, warehouse = tmp_path / "drop", tmp_path / "w.duckdb"
    generate_county(GeneratorConfig(out_dir=drop, plan="thurrock", seed=3, residents=1500,
                                    cohort_families=30, months=12,
                                    conventions_override=conventions or {}))
    request = RunRequest(extracts=drop, warehouse=warehouse, plan="thurrock",
                         as_of=date(2023, 12, 31))
    with build_then_publish(warehouse) as con:
        summary = ingest_extracts(con, request)
        build_staging(con, request)
    with open(drop / "_truth" / "planted_faults.csv", encoding="utf-8") as handle:
        planted = {(r["month"], r["file"], int(r["row_number"]), r["column"])
                   for r in csv.DictReader(handle)}
    con = duckdb.connect(str(warehouse), read_only=True)
    found = set(con.execute('SELECT month, file, row_number, "column" FROM meta.rejects')
                .fetchall())
    deliveries = con.execute("SELECT rows_read, rows_loaded, rows_rejected "
                             "FROM meta.deliveries WHERE status = 'loaded'").fetchall()
    contract_failures = con.execute("SELECT count(*) FROM meta.expectation_results "
                                    "WHERE severity = 'contract' AND NOT success").fetchall()
    con.close()
    assert planted, "the generator plants faults by default"
    assert found == planted
    assert all(read == loaded + rejected for read, loaded, rejected in deliveries)
    assert contract_failures == [(0,)]
    assert len(summary.loaded) == len(deliveries)
    if conventions:       # the byte-identical redeliveries are recognised, not loaded twice
        assert any(d.status == "already_loaded" for d in summary.deliveries)
