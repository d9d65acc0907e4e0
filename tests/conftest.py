"""Shared test helpers: drop folders written to the contract, a Prefect harness."""

from __future__ import annotations

import csv
import fcntl
import importlib.util
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="famlink-prefect-"))

from famlink.contract import load_contract  # noqa: E402


def write_delivery(drop: Path, month: str, file: str, rows: list[dict[str, str]],
                   *, bom: bool = False, crlf: bool = False,
                   header: list[str] | None = None) -> Path:
    """Write one extract file for a month; unspecified columns are left empty."""
    spec = load_contract().files[file]
    columns = header or spec.column_names
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    path = drop / month / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return path


def outcomes_benchmark() -> ModuleType:
    """benchmarks/outcomes.py as a module: the tests judge runs the way it does."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "outcomes.py"
    spec = importlib.util.spec_from_file_location("famlink_bench_outcomes", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the whole session (starting one costs ~15 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def held_and_claimed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """test_review's drop run once for the whole session (all workers): FAM1 held, FAM2
    claimed (countywide, as-of 2024-06-30). Read it only; copy it to change it."""
    from typer.testing import CliRunner

    from famlink.cli import app

    base = tmp_path_factory.getbasetemp()
    # under xdist each worker's base is a folder of this session's: share its parent
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "held-and-claimed"
    root.mkdir(exist_ok=True)
    drop, warehouse = root / "drop", root / "wh.duckdb"
    with open(root / ".lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (root / "done.json").exists():
            from test_review import write_drop

            write_drop(drop)
            result = CliRunner().invoke(app, [
                "run", "--extracts", str(drop), "--warehouse", str(warehouse), "--plan",
                "countywide", "--as-of", "2024-06-30", "--no-prefect"])
            (root / "done.json").write_text(json.dumps({"exit_code": result.exit_code,
                                                        "output": result.output}))
    done = json.loads((root / "done.json").read_text())
    assert done["exit_code"] == 0, done["output"]
    return drop, warehouse
