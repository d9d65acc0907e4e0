"""The monthly run as a scheduled deployment on a real Prefect server.

Two real processes: ``prefect server start`` (its own PREFECT_HOME, a free
port) and ``famlink serve``. The test reads the deployment and its schedule
through the Prefect client, back-runs a past month the way README says (the
``prefect deployment run`` command), waits for the run and finds it in the
warehouse, beside its linkage report, return and artifacts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from famlink.ingest.reading import FatalExtractError
from famlink.warehouse import RunRefused, WarehouseBusy
from flows.monthly import is_transient

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
BIN = Path(sys.executable).parent
DEPLOYMENT = "famlink-monthly-run/countywide"
CRON = "0 6 2 * *"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Terminate the process group it leads (its children too); kill it if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def wait_for(what: str, check: Any, seconds: float, *watched: subprocess.Popen) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in watched:
            assert process.poll() is None, f"{process.args[:3]} exited while waiting for {what}"
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def started(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[
        subprocess.Popen]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        stop(process)


@pytest.fixture
def prefect_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """Environment pointing at a fresh server, and the server's API url, while it runs."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_API_URL=url,
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               PREFECT_SERVER_UI_ENABLED="false",
               PREFECT_RUNNER_POLL_FREQUENCY="1")   # the serve process asks every second
    with started([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                  "--port", str(port)], env, tmp_path, tmp_path / "server.log") as server:
        wait_for("the Prefect server's /api/health", lambda: healthy(url), 90, server)
        yield env, url


def flow_run_of(client: Any, deployment_id: Any, name: str) -> Any:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterName,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])),
        sort=FlowRunSort.ID_DESC, limit=5)
    return runs[0] if runs else None


def finished(client: Any, flow_run_id: Any) -> Any:
    run = client.read_flow_run(flow_run_id)
    return run if run.state and run.state.type.value in FINAL else None


def artifacts_of(url: str, flow_run_id: Any) -> dict[str, dict]:
    """The flow run's artifacts by key, read from the server's REST API."""
    body = json.dumps({"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}}).encode()
    request = urllib.request.Request(f"{url}/artifacts/filter", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return {a["key"]: a for a in json.loads(response.read())}


def trigger(env: dict[str, str], cwd: Path, *params: str) -> None:
    args = [str(BIN / "prefect"), "deployment", "run", DEPLOYMENT]
    for param in params:
        args += ["--param", param]
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def ledger_runs(warehouse: Path) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute("SELECT as_of, plan, new_claims FROM claims.runs "
                           "ORDER BY run_id").fetchall()
    finally:
        con.close()


def test_served_deployment_has_its_schedule_and_back_runs_a_past_month(
        prefect_env: tuple[dict[str, str], str], tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env, url = prefect_env
    drop = tmp_path / "drop"
    for month in ("2023-01", "2023-02", "2023-03"):
        shutil.copytree(SAMPLE / month, drop / month)
    council = tmp_path / "council"
    council.mkdir()
    warehouse = council / "warehouse.duckdb"
    serve_args = [sys.executable, "-m", "famlink", "serve", "--extracts", str(drop),
                  "--warehouse", str(warehouse), "--plan", "countywide", "--cron", CRON]
    with started(serve_args, env, council, tmp_path / "serve.log") as serving, \
            temporary_settings(updates={PREFECT_API_URL: url}), \
            get_client(sync_client=True) as client:
        def deployment() -> Any:
            try:
                return client.read_deployment_by_name(DEPLOYMENT)
            except Exception:  # noqa: BLE001  (not registered yet)
                return None

        found = wait_for("the deployment", deployment, 60, serving)
        assert [s.schedule.cron for s in found.schedules] == [CRON]
        assert all(s.active for s in found.schedules)
        assert found.parameters == {"extracts": str(drop), "warehouse": str(warehouse),
                                    "plan": "countywide"}

        # a past month on a new warehouse, as README says
        trigger(env, council, "as_of=2023-03-31")
        run = wait_for("the back-run to be created",
                       lambda: flow_run_of(client, found.id, "countywide 2023-03-31"), 30, serving)
        run = wait_for("the run to finish", lambda: finished(client, run.id), 240, serving)
        assert run.state.is_completed(), (run.state, (tmp_path / "serve.log").read_text()[-3000:])

        runs = ledger_runs(warehouse)
        assert [(r[0], r[1]) for r in runs] == [(date(2023, 3, 31), "countywide")]
        report = council / "reports" / "linkage_2023-03-31.html"
        assert report.is_file() and "<html" in report.read_text()[:2000].lower()
        returns = sorted(p.name for p in (council / "returns").iterdir())
        assert returns == [f"claims_return_countywide_2023-03-31{end}"
                           for end in (".csv", ".xlsx", "_totals.csv")], returns

        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
        from prefect.client.schemas.sorting import TaskRunSort

        keys = {"famlink-countywide-run-summary", "famlink-countywide-linkage-report",
                "famlink-countywide-run-report", "famlink-countywide-return"}
        artifacts = wait_for("the run's artifacts", lambda: (
            found_ := artifacts_of(url, run.id)) and set(found_) == keys and found_, 30, serving)
        table = artifacts["famlink-countywide-run-summary"]["data"]
        figures = {row["figure"]: row["value"] for row in (
            json.loads(table) if isinstance(table, str) else table)}
        assert figures["as-of"] == "2023-03-31"
        assert figures["new claims at this run"] == runs[0][2]
        assert report.resolve().as_uri() in artifacts["famlink-countywide-linkage-report"]["data"]

        # an earlier month now is a back-run: refused (and not retried) unless asked for
        trigger(env, council, "as_of=2023-02-28")
        refused = wait_for("the refused run", lambda: flow_run_of(
            client, found.id, "countywide 2023-02-28"), 30, serving)
        refused = wait_for("the refused run to finish", lambda: finished(client, refused.id), 120,
                           serving)
        assert refused.state.is_failed()
        assert "back-run" in (refused.state.message or "")
        builds = [t for t in client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[refused.id])),
            sort=TaskRunSort.ID_DESC, limit=50)
            if t.name.startswith("build-and-publish")]
        assert [t.run_count for t in builds] == [1], "a refusal is not retried"

        trigger(env, council, "as_of=2023-02-28", "back_run=true")
        back = wait_for("the back-run", lambda: flow_run_of(
            client, found.id, "countywide 2023-02-28 back-run"), 30, serving)
        back = wait_for("the back-run to finish", lambda: finished(client, back.id), 240, serving)
        assert back.state.is_completed(), back.state
        assert ledger_runs(warehouse) == runs, "a back-run records nothing"
        assert not (council / "reports" / "linkage_2023-02-28.html").exists()
        assert (council / "reports" / "run_2023-02-28_back-run.html").is_file()


def test_serve_refuses_a_bad_cron_and_no_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), DO_NOT_TRACK="1")
    base = [sys.executable, "-m", "famlink", "serve", "--extracts", str(SAMPLE),
            "--warehouse", str(tmp_path / "w.duckdb"), "--plan", "countywide"]
    bad = subprocess.run(base + ["--cron", "every month"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "is not a cron schedule" in bad.stderr
    assert "Traceback" not in bad.stderr
    none = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60)
    assert none.returncode == 2 and "no Prefect server" in none.stderr, none.stderr


def test_transient_faults_are_retried_refusals_and_bad_extracts_are_not(tmp_path: Path) -> None:
    assert is_transient(OSError(5, "Input/output error"))
    assert is_transient(duckdb.IOException("could not write"))
    assert not is_transient(FatalExtractError(tmp_path / "2023-01" / "x.csv", "not UTF-8"))
    assert not is_transient(WarehouseBusy("being written"))
    assert not is_transient(RunRefused("precedes the latest run"))
    assert not is_transient(FileNotFoundError("no such folder"))
    assert not is_transient(ValueError("bad date"))


def test_the_command_line_run_writes_the_linkage_report_once_as_a_step(tmp_path: Path) -> None:
    """The report is a step of the run: ``famlink run`` prints it, a back-run writes none."""
    from typer.testing import CliRunner

    from famlink.cli import app

    drop = tmp_path / "drop"
    for month in ("2023-01", "2023-02"):
        shutil.copytree(SAMPLE / month, drop / month)
    warehouse = tmp_path / "w.duckdb"
    args = ["run", "--extracts", str(drop), "--warehouse", str(warehouse), "--plan",
            "countywide", "--no-prefect", "--as-of"]
    result = CliRunner().invoke(app, [*args, "2023-02-28"])
    assert result.exit_code == 0, result.output
    report = tmp_path / "reports" / "linkage_2023-02-28.html"
    assert result.output.count("linkage report:") == 1
    assert report.is_file() and report.stat().st_mode & 0o077 == 0, "owner-only"
    back = CliRunner().invoke(app, [*args, "2023-01-31", "--back-run"])
    assert back.exit_code == 0, back.output
    assert "linkage report:" not in back.output
    assert sorted(p.name for p in report.parent.iterdir()) == [
        report.name, "run_2023-01-31_back-run.html", "run_2023-02-28.html"]
