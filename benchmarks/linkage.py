"""Linkage benchmark against the synthetic generator's ground truth (not a test).

    .venv/bin/python benchmarks/linkage.py                      # generator default size
    .venv/bin/python benchmarks/linkage.py --residents 5000
    .venv/bin/python benchmarks/linkage.py --scale county --drop /tmp/county --keep
    .venv/bin/python benchmarks/linkage.py --conventions varied --seed 2
    .venv/bin/python benchmarks/linkage.py --febrl       # FEBRL 1-4: famlink vs plain Splink

Generates a county into a temporary folder (or reuses ``--drop DIR``), loads
the state of every extract at the last month into ``staging.*`` (its own
loader: latest snapshot, delta keys replaced and deleted, typed as the
contract says; ``--loader ingest`` uses ``famlink ingest`` instead), runs
``link_warehouse`` with the committed model and prints, against
``_truth/records.csv``:

- record-to-cohort-person links per source: each source record paired with
  the cohort member it belongs to (what claims depend on);
- pairwise precision, recall and F1 over all record pairs (every resident,
  cohort or not), overall and per source (pairs with a record of that source);
- wall time and peak resident memory per stage (the peak is reset between
  stages through ``/proc/self/clear_refs``, so each is that stage's own).

``--scale county`` links about 1.5 million residents: generation alone takes
about 15 minutes, so keep the drop (``--keep``) and pass it back with
``--drop``. Staging goes into a DuckDB file next to the run (spilling to disk
under ``--memory-limit``), and everything generated is deleted at the end
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import yaml

from matchers.linkage import link_warehouse
from matchers.records import EXTRACTS

CONTRACT = Path(__file__).resolve().parents[1] / "famlink" / "contract" / "extracts.yaml"
TYPES = {"date": "DATE", "timestamp": "TIMESTAMP", "integer": "BIGINT", "decimal": "DOUBLE"}


# ------------------------------------------------------------------ memory
def _status_mb(field: str) -> float:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return float("nan")
    m = re.search(rf"{field}:\s+(\d+)", text)
    return int(m.group(1)) / 1024 if m else float("nan")


_RESET = True


def reset_peak() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM;
    it also resets what ``/usr/bin/time`` reports, hence ``--whole-peak``)."""
    if not _RESET:
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mb() -> float:
    return _status_mb("VmHWM")


class Stages:
    """Wall time and peak RSS of each stage."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []
        self.t = time.perf_counter()
        reset_peak()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.rows.append((name, now - self.t, peak_mb()))
        print(f"  {name:28s} {now - self.t:8.1f}s  peak {peak_mb():7.0f} MB", flush=True)
        self.t = time.perf_counter()
        reset_peak()

    def print(self) -> None:
        print("stage                          wall (s)   peak RSS (MB)")
        for name, sec, mb in self.rows:
            print(f"  {name:28s} {sec:8.1f}  {mb:12.0f}")


# ------------------------------------------------------------------ loading
def _spec() -> dict:
    return yaml.safe_load(CONTRACT.read_text())["files"]


def load_staging(con: duckdb.DuckDBPyConnection, drop: Path) -> None:
    """Latest record per key across the month folders (deletes honoured; a key
    repeated in one file: its last row), typed; ``_raw_key`` is the key as written
    in the file (how the truth names it)."""
    spec = _spec()
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    for fname, f in spec.items():
        files = sorted(drop.glob(f"[0-9][0-9][0-9][0-9]-[0-9][0-9]/{fname}"))
        files = [p for p in files if p.stat().st_size > 0]
        if not files:
            continue
        if f["delivery"] == "snapshot":
            files = files[-1:]
        sel = []
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
            f"SELECT {', '.join(f['columns'])}, {i} AS _ord, {raw_key} AS _raw_key, "
            f"row_number() OVER () AS _line "
            f"FROM read_csv('{p}', header=true, all_varchar=true, ignore_errors=true)"
            for i, p in enumerate(files)
        )
        status = "record_status" in f["columns"]
        name = fname.removesuffix(".csv")
        con.execute(
            f"""CREATE OR REPLACE TABLE staging.{name} AS
            SELECT {', '.join(sel)}, _raw_key FROM ({union})
            QUALIFY row_number() OVER (PARTITION BY _raw_key ORDER BY _ord DESC, _line DESC) = 1
            {"AND coalesce(record_status, 'A') <> 'D'" if status else ""}"""
        )


def ingest_staging(con_path: Path, drop: Path) -> duckdb.DuckDBPyConnection:
    """``famlink ingest`` into a warehouse file; staging views at the last month."""
    import subprocess
    import sys

    months = sorted(p.name for p in drop.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]"))
    as_of = f"{months[-1]}-28"
    famlink = Path(sys.executable).with_name("famlink")
    subprocess.run(
        [str(famlink), "ingest", "--extracts", str(drop), "--warehouse", str(con_path),
         "--as-of", as_of], check=True, stdout=subprocess.DEVNULL,
    )
    return duckdb.connect(str(con_path))


def record_keys_sql(con: duckdb.DuckDBPyConnection) -> str:
    """record_id -> key as written in the file, for every linked extract."""
    spec = _spec()
    parts = []
    for name, es in EXTRACTS.items():
        cols = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'staging' "
            "AND table_name = ?", [name]).fetchall()}
        if not cols:
            continue
        fcols = spec[f"{name}.csv"]["columns"]
        key = " || '|' || ".join(f"coalesce(CAST({k} AS VARCHAR), '')" for k in es.key)
        if "_raw_key" in cols:
            raw = "_raw_key"
        else:  # ingest: rebuild the written form (dates in the file's format)
            raw = " || '|' || ".join(
                f"coalesce(strftime({k}, '{fcols[k]['format']}'), '')"
                if fcols[k]["type"] in ("date", "timestamp")
                else f"coalesce(CAST({k} AS VARCHAR), '')" for k in es.key)
        parts.append(f"SELECT '{name}:' || {key} AS record_id, {raw} AS raw_key "
                     f"FROM staging.{name}")
    return " UNION ALL ".join(parts)


# ------------------------------------------------------------------ evaluation
def _prf(tp: float, pred: float, true: float) -> tuple[float, float, float]:
    p, r = tp / max(pred, 1), tp / max(true, 1)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def evaluate(con: duckdb.DuckDBPyConnection, truth: Path) -> dict[str, tuple]:
    con.execute(f"CREATE OR REPLACE TEMP TABLE _bm_keys AS {record_keys_sql(con)}")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _bm_truth AS
        SELECT replace(file, '.csv', '') AS extract, record_key AS raw_key, true_person_id
        FROM read_csv('{truth / 'records.csv'}', all_varchar=true)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _bm_ev AS
        SELECT l.record_id, l.extract, l.person_id, t.true_person_id
        FROM linkage.record_links l JOIN _bm_keys k USING (record_id)
        JOIN _bm_truth t ON t.extract = l.extract AND t.raw_key = k.raw_key"""
    )
    linked, total = con.execute(
        "SELECT (SELECT count(*) FROM _bm_ev), (SELECT count(*) FROM linkage.record_links)"
    ).fetchall()[0]
    print(f"records with ground truth: {linked} of {total}")
    out: dict[str, tuple] = {}

    print("record-to-cohort-person links (what claims use):")
    sources = [r[0] for r in con.execute(
        "SELECT DISTINCT extract FROM _bm_ev WHERE extract <> 'cohort_members' ORDER BY 1"
    ).fetchall()]
    # links (source record, cohort record) within a group: sources x cohort records
    sql = """WITH g AS (
            SELECT {key}, count(*) FILTER (WHERE extract = 'cohort_members') AS co,
                   count(*) FILTER (WHERE extract <> 'cohort_members' AND {where}) AS src
            FROM _bm_ev GROUP BY {key})
        SELECT coalesce(sum(co * src), 0) FROM g"""
    for label, where in [("all sources", "true")] + [(s, f"extract = '{s}'") for s in sources]:
        tp, pred, true = (con.execute(sql.format(key=k, where=where)).fetchall()[0][0]
                          for k in ("person_id, true_person_id", "person_id", "true_person_id"))
        p, r, f = _prf(tp, pred, true)
        out[f"cohort:{label}"] = (p, r, f, true)
        print(f"  {label:24s} P={p:.4f} R={r:.4f} F1={f:.4f} (true links {true})")

    print("pairwise, all record pairs (every resident):")
    # pairs involving a record of source S in a group with n records, s of them from S
    sql = """WITH g AS (
            SELECT {key}, count(*) AS n, count(*) FILTER (WHERE extract = ?) AS s
            FROM _bm_ev GROUP BY {key})
        SELECT sum(n * (n - 1) / 2), sum(s * (s - 1) / 2 + s * (n - s)) FROM g"""
    groups = {k: sql.format(key=k) for k in
              ("person_id, true_person_id", "person_id", "true_person_id")}
    for label in ["all"] + ["cohort_members"] + sources:
        vals = [con.execute(q, [label]).fetchall()[0] for q in groups.values()]
        idx = 0 if label == "all" else 1
        tp, pred, true = (float(v[idx] or 0) for v in vals)
        p, r, f = _prf(tp, pred, true)
        out[f"pairs:{label}"] = (p, r, f, true)
        print(f"  {label:24s} P={p:.4f} R={r:.4f} F1={f:.4f} (true pairs {true:.0f})")
    return out


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> dict[str, tuple]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drop", type=Path, help="existing generated drop folder (not deleted)")
    ap.add_argument("--scale", default="small", choices=["small", "county"])
    ap.add_argument("--residents", type=int)
    ap.add_argument("--families", type=int)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--conventions", choices=["default", "varied"], default="default",
                    help="the generator's recording conventions (famlink generate's option)")
    ap.add_argument("--febrl", action="store_true",
                    help="FEBRL 1-4 through famlink link and plain Splink (benchmarks/febrl.py)")
    ap.add_argument("--no-learn", action="store_true",
                    help="score with the committed model as it is (no training on the data)")
    ap.add_argument("--model", type=Path, help="model JSON (default: the committed one)")
    ap.add_argument("--loader", choices=["direct", "ingest"], default="direct")
    ap.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 5GB")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--keep", action="store_true", help="keep what was generated")
    ap.add_argument("--workdir", type=Path, help="where to generate (default: a temp dir)")
    ap.add_argument("--whole-peak", action="store_true",
                    help="do not reset the peak RSS between stages (for /usr/bin/time -v)")
    args, rest = ap.parse_known_args(argv)
    if args.febrl:
        import importlib.util

        spec = importlib.util.spec_from_file_location(
            "febrl", Path(__file__).with_name("febrl.py"))
        febrl = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(febrl)
        febrl.main(rest)
        return {}
    if rest:
        ap.error(f"unrecognised arguments: {' '.join(rest)}")
    county = args.scale == "county"
    memory_limit = args.memory_limit or ("5GB" if county else None)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="famlink-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    global _RESET
    _RESET = not args.whole_peak
    stages = Stages()
    try:
        drop = args.drop
        if drop is None:
            from famlink_generator import GeneratorConfig, generate_county

            drop = work / "drop"
            kw = {"residents": args.residents} if args.residents else {}
            if args.families:
                kw["cohort_families"] = args.families
            summary = generate_county(GeneratorConfig(
                out_dir=drop, plan="countywide", seed=args.seed, scale=args.scale,
                months=args.months, conventions=args.conventions, **kw))
            print(f"generated {summary.residents} residents, {summary.cohort_people} cohort "
                  f"people, {summary.rows_written} rows in {drop}")
            stages.done("generate")
        db = work / "bench.duckdb"
        if args.loader == "ingest":
            con = ingest_staging(db, drop)
        else:
            con = duckdb.connect(str(db) if county else ":memory:")
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        if args.threads:
            con.execute(f"SET threads = {args.threads}")
        if args.loader == "direct":
            load_staging(con, drop)
        con.execute("CHECKPOINT")  # the load's writes belong to the load stage
        stages.done(f"load ({args.loader})")
        t0 = time.perf_counter()
        link_stage: Callable[[str], None] = lambda msg: (  # noqa: E731
            stages.done("link: " + msg.split(":", 1)[1].split(" done")[0].strip())
            if " done in " in msg else print(f"  {msg}"))
        summary = link_warehouse(con, args.model, progress=link_stage, learn=not args.no_learn)
        link_wall = time.perf_counter() - t0
        print(f"link_warehouse: {link_wall:.1f}s; {summary}")
        result = evaluate(con, drop / "_truth")
        stages.done("evaluate")
        stages.print()
        print(f"link_warehouse total wall time: {link_wall:.1f}s; peak RSS over the link "
              f"stages: {max(mb for n, _, mb in stages.rows if n.startswith('link')):.0f} MB")
        con.close()
        return result
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
