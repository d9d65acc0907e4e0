"""Scoring candidate person pairs on Splink's Spark backend, for data beyond one machine.

The person model is written for DuckDB (``matchers.comparisons``). With
``FAMLINK_LINKAGE_BACKEND=spark`` (or ``famlink run --linkage-backend spark``) the
blocked pairs are scored by Splink on Spark with the same model: every level and
blocking rule is rendered from DuckDB SQL to Spark SQL with sqlglot, and the few
functions sqlglot cannot map are rewritten here (``to_spark_sql``): Splink's jar of
similarity UDFs supplies ``jaro_winkler`` and ``damerau_levenshtein`` (it ships in
the splink wheel, so nothing is fetched). Everything else stays in DuckDB: the
per-record derived columns (soundex, house number) and the blocking columns are
made before the records go to Spark, training runs on DuckDB (it already works on
a sample of at most ``MAX_TRAIN_RECORDS``), and the scored pairs come back as Arrow
for the guards, clustering and the ``linkage.*`` tables.

Spark is configured by environment: ``FAMLINK_SPARK_MASTER`` (default ``local[*]``:
this machine; a cluster's master URL otherwise, or run under ``spark-submit`` and
the active session is used), ``FAMLINK_SPARK_LOCAL_DIR`` (spill and checkpoint
space; a temporary directory by default) and ``FAMLINK_SPARK_SHUFFLE_PARTITIONS``.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
import warnings
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

BACKEND_ENV = "FAMLINK_LINKAGE_BACKEND"
BACKENDS = ("duckdb", "spark")
# Columns that hold lists: DuckDB's len() of these is Spark's size().
LIST_COLUMNS = {"first_name_groups", "other_names", "last_name_tokens", "postcodes"}
PREDICTIONS_VIEW = "_fl_spark_predictions"

_session: Any = None


def linkage_backend() -> str:
    """Where the pairs are scored: ``duckdb`` (the default) or ``spark``."""
    value = os.environ.get(BACKEND_ENV, "duckdb").strip().lower() or "duckdb"
    if value not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={value!r}: must be one of {', '.join(BACKENDS)}")
    return value


def check_backend(name: str | None = None) -> str:
    """Score this process's linkage on ``name`` (``famlink run --linkage-backend``), or
    on ``FAMLINK_LINKAGE_BACKEND`` when None; refused before a run starts when the
    name is unknown or pyspark is not installed."""
    if name is not None:
        os.environ[BACKEND_ENV] = name.strip().lower()
        try:
            linkage_backend()
        except ValueError:
            del os.environ[BACKEND_ENV]
            raise ValueError(f"--linkage-backend {name!r}: must be one of "
                             f"{', '.join(BACKENDS)}") from None
    backend = linkage_backend()
    if backend == "spark" and importlib.util.find_spec("pyspark") is None:
        raise ValueError("the spark linkage backend needs pyspark: pip install 'famlink[spark]'")
    return backend


def _column_name(node: exp.Expression) -> str:
    """A column's name without its ``_l``/``_r`` side (``postcodes_l`` -> ``postcodes``)."""
    name = node.name if isinstance(node, exp.Column) else ""
    return name[:-2] if name.endswith(("_l", "_r")) else name


def _to_spark(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.JarowinklerSimilarity):
        return exp.Anonymous(this="jaro_winkler", expressions=[node.this, node.expression])
    if isinstance(node, exp.ArrayOverlaps):
        return exp.Anonymous(this="arrays_overlap", expressions=[node.this, node.expression])
    if isinstance(node, exp.Length) and _column_name(node.this) in LIST_COLUMNS:
        return exp.Anonymous(this="size", expressions=[node.this])
    if isinstance(node, exp.DateDiff):
        unit = (node.unit.name if node.unit is not None else "day").lower()
        end, start = node.this, node.expression
        if unit == "year":
            # DuckDB counts year boundaries crossed, not whole years elapsed.
            return exp.paren(exp.Sub(this=exp.Year(this=end.copy()),
                                     expression=exp.Year(this=start.copy())))
        if unit == "day":
            return exp.Anonymous(this="datediff", expressions=[end, start])
        raise ValueError(f"date_diff unit {unit!r} has no Spark rendering in matchers/spark.py")
    return node


def to_spark_sql(duckdb_sql: str) -> str:
    """One comparison level's or blocking rule's DuckDB SQL as Spark SQL."""
    if duckdb_sql.strip().upper() == "ELSE":
        return duckdb_sql
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb").transform(_to_spark)
    return tree.sql(dialect="spark")


def spark_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The Splink settings of ``settings`` with every condition in Spark SQL."""
    out = deepcopy(settings)
    out.pop("famlink", None)
    out["sql_dialect"] = "spark"
    for comparison in out["comparisons"]:
        for level in comparison["comparison_levels"]:
            level["sql_condition"] = to_spark_sql(level["sql_condition"])
    for rule in out["blocking_rules_to_generate_predictions"]:
        rule["blocking_rule"] = to_spark_sql(rule["blocking_rule"])
        rule["sql_dialect"] = "spark"
    return out


def spark_session() -> Any:
    """The Spark session pairs are scored in: the active one (``spark-submit``, a
    notebook) or one started here with Splink's similarity jar."""
    global _session
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if _session is not None:
        return _session
    from splink.backends.spark import similarity_jar_location

    local = os.environ.get("FAMLINK_SPARK_LOCAL_DIR") or tempfile.mkdtemp(prefix="famlink-spark-")
    if not os.environ.get("FAMLINK_SPARK_LOCAL_DIR"):
        atexit.register(shutil.rmtree, local, True)
    builder = (
        SparkSession.builder.appName("famlink-linkage")
        .master(os.environ.get("FAMLINK_SPARK_MASTER", "local[*]"))
        .config("spark.jars", similarity_jar_location())
        .config("spark.local.dir", local)
        .config("spark.sql.warehouse.dir", os.path.join(local, "warehouse"))
        .config("spark.sql.shuffle.partitions",
                os.environ.get("FAMLINK_SPARK_SHUFFLE_PARTITIONS", "8"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Djava.io.tmpdir={local}")
    )
    _session = builder.getOrCreate()
    _session.sparkContext.setLogLevel("ERROR")
    _session.sparkContext.setCheckpointDir(os.path.join(local, "checkpoints"))
    return _session


@dataclass(frozen=True)
class SparkPredictions:
    """Spark's scored pairs, registered in the scratch DuckDB under ``physical_name``
    (the name Splink's own DuckDB predictions carry)."""

    physical_name: str
    pairs: int


def spark_predict(
    scratch: Any, table: str, settings: dict[str, Any], min_probability: float
) -> SparkPredictions:
    """Score the blocked pairs of the scratch DuckDB's ``table`` on Spark with
    ``settings`` (DuckDB SQL, rendered for Spark here); the pairs come back as
    Arrow into ``scratch`` as ``PREDICTIONS_VIEW``."""
    import logging

    from splink import Linker
    from splink.backends.spark import SparkAPI

    with warnings.catch_warnings():
        # pyspark 4 warns that it "does not yet fully support pandas >= 3": only Arrow
        # crosses between DuckDB and Spark here, never pandas
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        spark = spark_session()
        records = spark.createDataFrame(scratch.sql(f"SELECT * FROM {table}").to_arrow_table())
        logging.getLogger("splink").setLevel(logging.WARNING)
        api = SparkAPI(spark_session=spark, break_lineage_method="persist")
        linker = Linker(api.register(records), spark_settings(settings), log_level=None,
                        validate_settings=False)
        predictions = linker.inference.predict(threshold_match_probability=min_probability)
        pairs = predictions.as_spark_dataframe().toArrow()
        linker.table_management.delete_tables_created_by_splink_from_db()
        spark.catalog.clearCache()
    scratch.register(PREDICTIONS_VIEW, pairs)
    return SparkPredictions(PREDICTIONS_VIEW, pairs.num_rows)
