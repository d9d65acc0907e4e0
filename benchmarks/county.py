"""The county benchmark: a first load and one more month against DuckDB's own parse (not a test).

    .venv/bin/python benchmarks/county.py --drop /work/county/seed11
    .venv/bin/python benchmarks/county.py --drop /work/county/seed11 --months 6 --no-splink
    .venv/bin/python benchmarks/county.py --seed 11 --work /tmp/county      # generates it

Measures, on one drop folder (``famlink generate --scale county``, or ``--drop``):

- the floor: DuckDB's own parse of every file the first load reads (``read_csv``,
  every column as text, one query per extract over its month files);
- the first load: the monthly run (``famlink run``'s steps) on a new warehouse
  as at the end of the drop's last month but one (2024-11-30 for 24 months);
- one more month: the next run on that warehouse, as at the end of the last month;
- for each run, wall time and peak memory per stage. Each run is a child
  process; its stages come from the run's progress callback, and the memory of
  the child's whole process tree is sampled from /proc every 50 ms (the
  whole-run peak is the child's exact ``ru_maxrss`` as well);
- plain Splink 5 (default comparisons, famlink's blocking over the columns it
  is given: ``benchmarks/febrl.py``) on the county's person records, and both
  tools' pairwise F1 against ``_truth/records.csv``, scored alike.

``--months N`` runs on the first N months only (hard links into ``--work``):
quick figures while profiling. ``--stages`` picks parts (floor, first, month,
splink). The goals of issue 12 are printed beside the figures: first load
<= 15x the floor, one more month <= 0.1x the first load, peak <= 4 GB.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_FIRST_X_FLOOR = 15.0
GOAL_MONTH_X_FIRST = 0.1
GOAL_PEAK_MB = 4096.0
STAGES = ("floor", "first", "month", "splink")
# the run's steps (flows.monthly.monthly_steps) as the benchmark's stages
STEP_STAGE = {
    "ingest extracts": "ingest",
    "build staging": "staging",
    "link people and households": "link",
    "evaluate plan outcomes": "measures+outcomes",
    "record claims": "claims",
    "publish analyst layer": "publish",
    "report linkage": "reports",
    "report run": "reports",
}
STAGE_ORDER = ("prepare", "ingest", "validate", "staging", "link", "measures+outcomes",
               "claims", "publish", "reports")


# ------------------------------------------------------------------ the drop
def months_of(drop: Path) -> list[str]:
    return sorted(p.name for p in drop.iterdir()
                  if p.is_dir() and len(p.name) == 7 and p.name[4] == "-")


def month_end(month: str) -> date:
    year, mon = int(month[:4]), int(month[5:7])
    return date(year, mon, calendar.monthrange(year, mon)[1])


def first_months(drop: Path, n: int, work: Path) -> Path:
    """A drop of the first ``n`` months, hard-linked (the truth is shared as it is)."""
    out = work / f"drop-{n}m"
    if out.exists():
        return out
    tmp = work / f".drop-{n}m.tmp"
    for month in months_of(drop)[:n]:
        (tmp / month).mkdir(parents=True, exist_ok=True)
        for f in (drop / month).iterdir():
            os.link(f, tmp / month / f.name)
    os.symlink(drop.resolve() / "_truth", tmp / "_truth")
    tmp.rename(out)
    return out


def generate(work: Path, seed: int) -> Path:
    drop = work / f"county-seed{seed}"
    if not drop.exists():
        subprocess.run([sys.executable, "-m", "famlink", "generate", "--scale", "county",
                        "--seed", str(seed), "--out", str(drop)], check=True)
    return drop


# ------------------------------------------------------------------ the floor
def floor_seconds(drop: Path, up_to_month: str) -> tuple[float, int]:
    """DuckDB's parse of every file up to a month: all text, one query per extract."""
    import duckdb

    from famlink.contract import load_contract

    con = duckdb.connect()
    total_rows, started = 0, time.perf_counter()
    for name in load_contract().files:
        files = [str(p) for m in months_of(drop) if m <= up_to_month
                 for p in [drop / m / name] if p.exists() and p.stat().st_size > 0]
        if not files:
            continue
        total_rows += con.execute(
            f"SELECT count(*) FROM read_csv({files!r}, header=true, all_varchar=true, "
            "union_by_name=true)").fetchone()[0]
    con.close()
    return time.perf_counter() - started, total_rows


# ------------------------------------------------------------------ a run in a child
def child_run(extracts: str, warehouse: str, as_of: str) -> None:
    """In the child: the monthly run, each step and detail on stdout as a JSON line."""
    from famlink.pipeline import RunRequest
    from flows.monthly import run_monthly_local

    def say(message: str) -> None:
        print(json.dumps({"msg": message}), flush=True)

    say("step prepare")
    request = RunRequest(extracts=Path(extracts), warehouse=Path(warehouse), plan="countywide",
                         as_of=date.fromisoformat(as_of), progress=say)
    summary = run_monthly_local(request)
    say("step done")
    print(json.dumps({"steps": summary.step_seconds,
                      "rows_read": sum(d.rows_read for d in summary.ingest.deliveries)}),
          flush=True)


def _tree_rss_kb(root: int) -> int:
    """Resident memory of a process and all its descendants (kB), found through each
    thread's ``children`` list rather than by reading every process of the machine
    (that scan took a fifth of a core at 20 samples a second, beside the run)."""
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return total


def _tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of a process and its threads so far."""
    try:
        fields = Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class RunFigures:
    wall: float = 0.0
    peak_mb: float = 0.0                     # the child's ru_maxrss
    stages: dict[str, list[float]] = field(default_factory=dict)   # stage -> [s, MB, cpu s]
    rows_read: int = 0


def measured_run(extracts: Path, warehouse: Path, as_of: date, log: Path,
                 code: Path = ROOT, until: str | None = None) -> RunFigures:
    """One monthly run in a child process: wall time, tree memory and CPU per stage.

    ``code``: the famlink source the child runs (another checkout: before/after);
    ``until``: stop the child when that stage ends (figures up to it only).
    """
    env = dict(os.environ, PYTHONPATH=str(code))
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child-run", str(extracts),
                             str(warehouse), as_of.isoformat()], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    figures = RunFigures()
    current = ["start", started, 0, 0.0]      # stage, since, peak kB, cpu at start
    lock = threading.Lock()

    def sample() -> None:
        while proc.poll() is None:
            kb = _tree_rss_kb(proc.pid)
            with lock:
                current[2] = max(current[2], kb)
            time.sleep(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def close_stage(now: float) -> None:
        name, since, kb, cpu = current
        if name != "start":
            row = figures.stages.setdefault(name, [0.0, 0.0, 0.0])
            row[0] += now - since
            row[1] = max(row[1], kb / 1024)
            row[2] += _tree_cpu_s(proc.pid) - cpu
            print(f"    ({name} {now - since:.1f} s, {kb / 1024:,.0f} MB, "
                  f"cpu {row[2]:.1f} s)", flush=True)

    for line in proc.stdout:                  # type: ignore[union-attr]
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if "steps" in event:
            figures.rows_read = event["rows_read"]
            continue
        msg: str = event["msg"]
        stage = None
        if msg.startswith("step "):
            step = msg[5:]
            stage = STEP_STAGE.get(step, step)
        elif msg.startswith("expectations: "):
            stage = "validate"
        if stage and stage != current[0]:
            now = time.perf_counter()
            with lock:
                ended = current[0]
                close_stage(now)
                current[:] = [stage, now, _tree_rss_kb(proc.pid), _tree_cpu_s(proc.pid)]
            if until and ended == until:
                current[0] = "start"
                proc.kill()
                break
    _, status, usage = os.wait4(proc.pid, 0)
    if until:
        status = 0
    proc.returncode = os.waitstatus_to_exitcode(status)
    figures.wall = time.perf_counter() - started
    with lock:
        close_stage(time.perf_counter())
    figures.stages.pop("done", None)
    figures.peak_mb = usage.ru_maxrss / 1024
    if proc.returncode != 0:
        raise SystemExit(f"the run as at {as_of} failed (exit {proc.returncode}): see {log}")
    return figures


# ------------------------------------------------------------------ plain Splink
def linkage_f1(warehouse: Path, truth: Path, splink: bool) -> list[tuple[str, float, float]]:
    """(tool, seconds, pairwise F1 over all records) for famlink and plain Splink."""
    import duckdb

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import linkage as bench  # benchmarks/linkage.py: truth and scoring

    con = duckdb.connect()
    con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
    con.execute("USE wh")
    scores = bench.evaluate(con, truth)
    out = [("famlink", float("nan"), scores["pairs:all"][2])]   # its time: the run's link
    if splink:
        out.append(plain_splink(con))
    con.close()
    return out


def plain_splink(con: object) -> tuple[str, float, float]:
    """Plain Splink 5 on the person records famlink linked: pairs at 0.9, clustered."""
    import logging

    import duckdb
    import pandas as pd

    logging.getLogger("splink").setLevel(logging.ERROR)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import febrl  # benchmarks/febrl.py: plain Splink's settings
    import linkage as bench

    assert isinstance(con, duckdb.DuckDBPyConnection)
    records = con.execute("""
        SELECT e.record_id AS id, '' AS entity, p.first_name, p.last_name,
               CAST(p.dob AS VARCHAR) AS dob, p.postcode, p.address
        FROM temp.main._bm_ev e JOIN linkage.person_records p USING (record_id)
    """).df().fillna("")
    pairs, seconds = febrl.run_splink([records])
    ids = {r: i for i, r in enumerate(records.id)}
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for a, b in pairs:
        ra, rb = find(ids[a]), find(ids[b])
        if ra != rb:
            parent[ra] = rb
    clusters = pd.DataFrame({"record_id": records.id,
                             "cluster": [find(i) for i in range(len(parent))]})
    con.register("_splink_clusters", clusters)
    sql = """WITH e AS (SELECT c.cluster AS person_id, t.true_person_id
                        FROM temp.main._bm_ev t JOIN _splink_clusters c USING (record_id)),
                  g AS (SELECT {key}, count(*) AS n FROM e GROUP BY {key})
             SELECT sum(n * (n - 1) / 2) FROM g"""
    tp, pred, true = (float(con.execute(sql.format(key=k)).fetchone()[0] or 0)
                      for k in ("person_id, true_person_id", "person_id", "true_person_id"))
    return "plain Splink 5", seconds, bench._prf(tp, pred, true)[2]


# ------------------------------------------------------------------ printing
def print_run(title: str, fig: RunFigures) -> None:
    print(f"{title}: {fig.wall:.1f} s wall, peak {fig.peak_mb:,.0f} MB (whole run)")
    print(f"  {'stage':<20}{'wall s':>9}{'peak MB':>10}{'cpu s':>9}")
    for name in [*STAGE_ORDER, *sorted(set(fig.stages) - set(STAGE_ORDER))]:
        if name in fig.stages:
            sec, mb, cpu = fig.stages[name]
            print(f"  {name:<20}{sec:>9.1f}{mb:>10,.0f}{cpu:>9.1f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drop", type=Path, help="an existing county drop folder (kept as it is)")
    ap.add_argument("--seed", type=int, default=11, help="for generating (no --drop)")
    ap.add_argument("--work", type=Path, help="warehouse and logs (default: a temp dir)")
    ap.add_argument("--months", type=int, help="only the drop's first N months")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help=f"comma-separated, of {', '.join(STAGES)}")
    ap.add_argument("--no-splink", action="store_true", help="leave out plain Splink")
    ap.add_argument("--until", choices=STAGE_ORDER,
                    help="stop each run after this stage (e.g. validate: ingest only)")
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="the famlink checkout the runs use (compare two commits)")
    ap.add_argument("--child-run", nargs=3, metavar=("EXTRACTS", "WAREHOUSE", "AS_OF"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_run:
        child_run(*args.child_run)
        return
    stages = set(args.stages.split(","))
    if args.no_splink:
        stages.discard("splink")
    if unknown := stages - set(STAGES):
        ap.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    work = args.work or Path(tempfile.mkdtemp(prefix="famlink-county-"))
    work.mkdir(parents=True, exist_ok=True)
    drop = args.drop or generate(work, args.seed)
    if args.months:
        drop = first_months(drop, args.months, work)
    months = months_of(drop)
    first_as_of, next_as_of = month_end(months[-2]), month_end(months[-1])
    warehouse = work / "warehouse.duckdb"
    print(f"drop {drop}: {len(months)} months {months[0]}..{months[-1]}; "
          f"first load as at {first_as_of}, one more month as at {next_as_of}; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    floor = first = month = None
    if "floor" in stages:
        floor, rows = floor_seconds(drop, months[-2])
        print(f"floor: DuckDB read_csv of {rows:,} rows (all text): {floor:.1f} s")
    if "first" in stages:
        for path in work.glob("warehouse.duckdb*"):
            path.unlink()
        first = measured_run(drop, warehouse, first_as_of, work / "first.log", args.code,
                             args.until)
        print_run(f"first load ({len(months) - 1} months, {first.rows_read:,} rows)", first)
    if "month" in stages:
        if not warehouse.exists():
            raise SystemExit(f"{warehouse} has no first load: run with --stages first,month")
        month = measured_run(drop, warehouse, next_as_of, work / "month.log", args.code,
                             args.until)
        print_run(f"one more month ({month.rows_read:,} rows)", month)
    if "splink" in stages:
        if not warehouse.exists():
            raise SystemExit(f"{warehouse} has no first load: run with --stages first,splink")
        link = first.stages.get("link", [float("nan")])[0] if first else float("nan")
        rows = linkage_f1(warehouse, drop / "_truth", splink=True)
        print(f"  {'linkage':<16}{'seconds':>9}{'pairwise F1':>13}")
        for tool, sec, f1 in rows:
            sec = link if tool == "famlink" else sec
            print(f"  {tool:<16}{sec:>9.1f}{f1:>13.4f}")
    if args.until:
        print(f"(runs stopped after {args.until}: no goals)")
        return
    print("goals (issue 12):")
    if first and floor:
        print(f"  first load / floor   {first.wall / floor:6.1f}x  "
              f"(goal <= {GOAL_FIRST_X_FLOOR:g}x)")
    if first and month:
        print(f"  one month / first    {month.wall / first.wall:6.2f}x  "
              f"(goal <= {GOAL_MONTH_X_FIRST:g}x)")
    peaks = [f.peak_mb for f in (first, month) if f]
    if peaks:
        print(f"  peak memory          {max(peaks):6,.0f} MB (goal <= {GOAL_PEAK_MB:,.0f} MB)")


if __name__ == "__main__":
    main()
