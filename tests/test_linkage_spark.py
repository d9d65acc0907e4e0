"""The linkage on Splink's Spark backend gives what it gives on DuckDB.

One local Spark (two cores, a temporary directory, no UI) scores the same
records as DuckDB; the clusters must be the same and every scored pair's match
probability equal within 1e-6. Java and pyspark are part of ``make test``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from matchers.linkage import link_warehouse
from matchers.spark import BACKEND_ENV, linkage_backend, to_spark_sql
from tests.linkage_fixtures import record_links, staging_con

# pyspark 4 warns it "does not yet fully support pandas >= 3": only Arrow crosses here
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    local = tmp_path_factory.mktemp("spark")
    session = (
        SparkSession.builder.master("local[2]").appName("famlink-test")
        .config("spark.jars", similarity_jar_location())
        .config("spark.local.dir", str(local))
        .config("spark.sql.warehouse.dir", str(local / "warehouse"))
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # a few dozen records: compiling whole-stage code costs more than it saves
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.adaptive.enabled", "false")
        # a short-lived JVM: the quick JIT alone warms up sooner
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _pairs(con) -> dict[tuple[int, int], float]:
    return {(a, b): p for a, b, p in con.execute(
        "SELECT profile_l, profile_r, match_probability FROM linkage.person_pairs").fetchall()}


def _clusters(links: dict) -> set[frozenset]:
    by_person: dict[str, set] = {}
    for key, (person_id, _ref, _method) in links.items():
        by_person.setdefault(person_id, set()).add(key)
    return {frozenset(v) for v in by_person.values()}


def test_spark_links_the_fixtures_as_duckdb_does(
    spark: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # term frequencies on, though the fixtures are small: Spark computes its own tables
    monkeypatch.setattr("matchers.linkage.MIN_TF_RECORDS", 0)
    monkeypatch.setenv(BACKEND_ENV, "duckdb")
    on_duckdb = staging_con()
    link_warehouse(on_duckdb)
    monkeypatch.setenv(BACKEND_ENV, "spark")
    on_spark = staging_con()
    link_warehouse(on_spark)

    duck_pairs, spark_pairs = _pairs(on_duckdb), _pairs(on_spark)
    assert duck_pairs, "the fixtures give scored pairs"
    assert set(spark_pairs) == set(duck_pairs)
    for pair, p in duck_pairs.items():
        assert spark_pairs[pair] == pytest.approx(p, abs=1e-6), pair
    duck_links, spark_links = record_links(on_duckdb), record_links(on_spark)
    assert _clusters(spark_links) == _clusters(duck_links)
    # the fixtures do link across sources: the equality is not of singletons
    assert any(len(c) > 1 for c in _clusters(spark_links))


def test_spark_sql_keeps_duckdb_meaning(spark) -> None:
    """Each rewritten function gives DuckDB's answer on Spark (one query per level
    shape the model uses, including the year-boundary rule of date_diff)."""
    import duckdb

    cases = [
        "jaro_winkler_similarity('MARTHA', 'MARHTA') >= 0.96",
        "damerau_levenshtein('ABCD', 'ACBD') <= 1",
        "list_has_any(['A', 'B'], ['B', 'C'])",
        "list_contains(['A', 'B'], 'C')",
        "date_diff('year', DATE '2010-12-31', DATE '2011-01-01') = 1",
        "abs(date_diff('day', DATE '2012-03-01', DATE '2012-02-01')) = 29",
    ]
    row = duckdb.sql("SELECT ['A', 'B'] AS postcodes_l, ['B', 'C'] AS postcodes_r, "
                     "'MARTHA' AS first_name_l, NULL::VARCHAR AS first_name_r")
    spark.createDataFrame(row.to_arrow_table()).createOrReplaceTempView("fl_row")
    cases += ["len(postcodes_l) = 2", "list_has_any(postcodes_l, postcodes_r)",
              "jaro_winkler_similarity(first_name_l, first_name_r) >= 0.8",
              "damerau_levenshtein(first_name_l, first_name_r) <= 1"]
    for sql in cases:
        expected = bool(row.query("fl_row", f"SELECT {sql} FROM fl_row").fetchall()[0][0])
        got = bool(spark.sql(f"SELECT {to_spark_sql(sql)} FROM fl_row").collect()[0][0])
        assert got == expected, sql


def test_unknown_backend_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "sparky")
    with pytest.raises(ValueError, match="FAMLINK_LINKAGE_BACKEND='sparky': must be one of"):
        linkage_backend()


def test_pyproject_installs_pyspark_for_tests() -> None:
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert "pyspark" in text.split("dev = [", 1)[1].split("]", 1)[0]


def test_run_refuses_an_unknown_backend_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "famlink", "run", "--extracts", "data/sample",
         "--warehouse", str(tmp_path / "w.duckdb"), "--plan", "countywide",
         "--as-of", "2024-12-31", "--linkage-backend", "sparky"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --linkage-backend 'sparky': must be one of duckdb, spark")
    assert not (tmp_path / "w.duckdb").exists()
    result = subprocess.run(
        [sys.executable, "-m", "famlink", "run", "--extracts", "data/sample",
         "--warehouse", str(tmp_path / "w.duckdb"), "--plan", "countywide",
         "--as-of", "2024-12-31"], env={**os.environ, BACKEND_ENV: "spak"},
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: FAMLINK_LINKAGE_BACKEND='spak': must be one of duckdb, spark")
