"""Linkage benchmark against the synthetic generator's ground truth (not a test).

    .venv/bin/python benchmarks/linkage.py --scale small --residents 20000

Generates a county (or reuses --drop DIR), loads the latest state of every
person-bearing extract straight from the CSVs into ``staging.*`` (its own
minimal loader, so the benchmark does not depend on ingest), runs
``link_warehouse`` and prints pairwise precision/recall/F1 overall and per
source (each source's records against the cohort person they belong to), plus
wall time and peak RSS per stage.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import duckdb
import yaml

from matchers.linkage import link_warehouse

CONTRACT = Path(__file__).resolve().parents[1] / "famlink" / "contract" / "extracts.yaml"
TYPES = {"date": "DATE", "timestamp": "TIMESTAMP", "integer": "BIGINT", "decimal": "DOUBLE"}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_staging(con: duckdb.DuckDBPyConnection, drop: Path) -> None:
    """Latest record per key across the month folders (deletes honoured), typed."""
    spec = yaml.safe_load(CONTRACT.read_text())["files"]
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    for fname, f in spec.items():
        files = sorted(drop.glob(f"[0-9][0-9][0-9][0-9]-[0-9][0-9]/{fname}"))
        if not files:
            continue
        if f["delivery"] == "snapshot":
            files = files[-1:]
        sel, raw_key = [], []
        for col, c in f["columns"].items():
            t = TYPES.get(c["type"])
            if t in ("DATE", "TIMESTAMP"):
                sel.append(f"CAST(try_strptime(nullif(trim({col}), ''), '{c['format']}') AS {t}) "
                           f"AS {col}")
            elif t:
                sel.append(f"TRY_CAST(nullif(trim({col}), '') AS {t}) AS {col}")
            else:
                sel.append(f"nullif({col}, '') AS {col}")
        raw_key = " || '|' || ".join(f"coalesce({k}, '')" for k in f["key"])
        union = " UNION ALL ".join(
            f"SELECT *, {i} AS _ord, {raw_key} AS _raw_key FROM read_csv('{p}', header=true, "
            f"all_varchar=true)"
            for i, p in enumerate(files)
        )
        status = "record_status" in f["columns"]
        name = fname.removesuffix(".csv")
        con.execute(
            f"""CREATE OR REPLACE TABLE staging.{name} AS
            SELECT {', '.join(sel)}, _raw_key FROM ({union})
            QUALIFY row_number() OVER (PARTITION BY _raw_key ORDER BY _ord DESC) = 1
            {"AND coalesce(record_status, 'A') <> 'D'" if status else ""}"""
        )


def evaluate(con: duckdb.DuckDBPyConnection, truth: Path) -> None:
    con.execute(
        f"CREATE OR REPLACE TABLE truth AS SELECT replace(file, '.csv', '') AS extract, "
        f"record_key AS raw_key, true_person_id FROM read_csv('{truth / 'records.csv'}', "
        f"all_varchar=true)"
    )
    con.execute(
        """CREATE OR REPLACE TABLE ev AS
        SELECT l.record_id, l.extract, l.person_id, t.true_person_id
        FROM linkage.record_links l JOIN _keys k USING (record_id)
        JOIN truth t ON t.extract = l.extract AND t.raw_key = k.raw_key"""
    )
    def f1(where: str, label: str) -> None:
        tp, pred, true = con.execute(
            f"""WITH c AS (SELECT * FROM ev c WHERE c.extract <> 'cohort_members' AND {where}),
            co AS (SELECT * FROM ev WHERE extract = 'cohort_members')
            SELECT count(*) FILTER (WHERE c.person_id = co.person_id
                                     AND c.true_person_id = co.true_person_id),
                   count(*) FILTER (WHERE c.person_id = co.person_id),
                   count(*) FILTER (WHERE c.true_person_id = co.true_person_id)
            FROM c JOIN co ON c.person_id = co.person_id OR c.true_person_id = co.true_person_id"""
        ).fetchall()[0]
        p, r = tp / max(pred, 1), tp / max(true, 1)
        print(f"  {label:24s} P={p:.4f} R={r:.4f} F1={2 * p * r / max(p + r, 1e-9):.4f} "
              f"(true links {true})")

    print("record-to-cohort-person links:")
    f1("true", "all sources")
    for (name,) in con.execute("SELECT DISTINCT extract FROM ev ORDER BY 1").fetchall():
        if name != "cohort_members":
            f1(f"c.extract = '{name}'", name)
    tp, pred, true = con.execute(
        """WITH a AS (SELECT person_id, true_person_id, count(*) n FROM ev GROUP BY ALL),
        p AS (SELECT person_id, count(*) n FROM ev GROUP BY ALL),
        t AS (SELECT true_person_id, count(*) n FROM ev GROUP BY ALL)
        SELECT (SELECT sum(n * (n - 1) / 2) FROM a), (SELECT sum(n * (n - 1) / 2) FROM p),
               (SELECT sum(n * (n - 1) / 2) FROM t)"""
    ).fetchall()[0]
    p, r = tp / max(pred, 1), tp / max(true, 1)
    print(f"all record pairs: P={p:.4f} R={r:.4f} F1={2 * p * r / max(p + r, 1e-9):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--drop", type=Path, help="existing generated drop folder")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--residents", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", type=Path)
    args = ap.parse_args()
    t = time.perf_counter()
    drop = args.drop
    if drop is None:
        from famlink.generate import GeneratorConfig, generate_county

        drop = Path(tempfile.mkdtemp(prefix="famlink-bench-"))
        kw = {"residents": args.residents} if args.residents else {}
        generate_county(GeneratorConfig(out_dir=drop, plan="countywide", seed=args.seed,
                                        scale=args.scale, **kw))
        print(f"generate: {time.perf_counter() - t:.1f}s peak {_peak_mb():.0f} MB ({drop})")
    con = duckdb.connect()
    t = time.perf_counter()
    load_staging(con, drop)
    print(f"load: {time.perf_counter() - t:.1f}s peak {_peak_mb():.0f} MB")
    t = time.perf_counter()
    summary = link_warehouse(
        con, args.model,
        progress=lambda m: print(f"{m} (peak RSS {_peak_mb():.0f} MB)", flush=True),
    )
    print(f"link total: {time.perf_counter() - t:.1f}s; {summary}")
    # record_id is extract:key with ISO dates; map it to the file's raw key.
    parts = []
    spec = yaml.safe_load(CONTRACT.read_text())["files"]
    from matchers.records import EXTRACTS

    for name, es in EXTRACTS.items():
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                           "table_schema='staging' AND table_name=?", [name]).fetchall()[0][0]:
            continue
        assert set(es.key) == set(spec[f"{name}.csv"]["key"])
        key = " || '|' || ".join(f"coalesce(CAST({k} AS VARCHAR), '')" for k in es.key)
        parts.append(f"SELECT '{name}:' || {key} AS record_id, _raw_key AS raw_key "
                     f"FROM staging.{name}")
    con.execute(f"CREATE TABLE _keys AS {' UNION ALL '.join(parts)}")
    evaluate(con, drop / "_truth")


if __name__ == "__main__":
    main()
