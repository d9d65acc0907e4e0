"""Ingest throughput: wall time, rows per second and peak memory of loading a drop folder.

    .venv/bin/python benchmarks/ingest.py --extracts data/sample --as-of 2024-12-31
    .venv/bin/python benchmarks/ingest.py --generate county --work /tmp/famlink-county

Prints per file (all months added up) the rows and seconds, then the total
wall time, the time spent in the Great Expectations checks, and the peak
resident memory of the process. Figures, not pass/fail: this machine is
shared, so compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

from famlink.pipeline import RunRequest, build_staging, ingest_extracts
from famlink.warehouse import build_then_publish


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extracts", type=Path)
    parser.add_argument("--generate", choices=["small", "county"])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--as-of", default="2024-12-31")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="famlink-ingest-"))
    extracts = args.extracts
    if extracts is None:
        from famlink_generator import GeneratorConfig, generate_county

        extracts = work / "drop"
        started = time.perf_counter()
        generate_county(GeneratorConfig(out_dir=extracts, scale=args.generate or "small",
                                        months=args.months))
        print(f"generated {extracts} in {time.perf_counter() - started:.1f}s")
    warehouse = work / "warehouse.duckdb"
    warehouse.unlink(missing_ok=True)
    timings: dict[str, list[float]] = defaultdict(list)
    last = [time.perf_counter(), ""]

    def progress(message: str) -> None:
        now = time.perf_counter()
        if last[1]:
            timings[last[1]].append(now - last[0])
        last[0], last[1] = now, message.split("/")[-1].replace("expectations: ", "GX ")
    request = RunRequest(extracts=extracts, warehouse=warehouse, plan="countywide",
                         as_of=date.fromisoformat(args.as_of), progress=progress)
    started = time.perf_counter()
    with build_then_publish(warehouse) as con:
        summary = ingest_extracts(con, request)
        progress("staging")
        build_staging(con, request)
    progress("")
    total = time.perf_counter() - started
    rows: dict[str, int] = defaultdict(int)
    for d in summary.deliveries:
        rows[d.file] += d.rows_read
    print(f"{'file':<28}{'rows':>12}{'load s':>9}{'rows/s':>11}{'GX s':>8}")
    for file in sorted(rows):
        seconds = sum(timings.get(file, []))
        gx = sum(timings.get(f"GX {file}", []))
        rate = rows[file] / seconds if seconds else 0
        print(f"{file:<28}{rows[file]:>12,}{seconds:>9.1f}{rate:>11,.0f}{gx:>8.1f}")
    print(f"total rows {sum(rows.values()):,} in {total:.1f}s wall "
          f"({sum(rows.values()) / total:,.0f} rows/s); "
          f"GX {sum(v for k, vs in timings.items() if k.startswith('GX') for v in vs):.1f}s; "
          f"peak RSS {peak_rss_mb():,.0f} MB; warehouse {warehouse.stat().st_size / 1e6:,.0f} MB")


if __name__ == "__main__":
    main()
