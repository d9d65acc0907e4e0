"""Outcome statuses and claims against the generator's ground truth, per plan.

    .venv/bin/python benchmarks/outcomes.py [--plans thurrock,cumbria] [--seeds 11,12,13]
        [--conventions varied] [--as-of 2024-06-30,2024-12-31] [--families 120]
        [--residents 4000]

For each plan: generate a synthetic county, run the monthly job at each as-of
date (one warehouse, runs in date order, as a council would), and compare

- per identified problem: our status vs the planted trajectory
  (improving -> achieved once its change is old enough; too_early ->
  not achieved; not_improving -> not achieved);
- claims: precision and recall of the claim list against the true claims
  (SSP: eligible and every problem improving; CE: an adult's continuous
  employment qualified by the as-of), and that no family is claimed twice.

Under ``--conventions varied`` each county records evidence, identities and
deliveries in conventions drawn from its seed (generator/famlink_generator/conventions.py:
outcome_code only on statements, services in the council's own words, Family
Star domains as numbers or spelt variously, split source ids, redelivered
snapshots...); the truth is the same as under the default conventions. Each
run also reports the families held for review (a claim held back by doubt:
counted as not claimed) and their share of eligible families; the table at the
end gives every plan, seed and date and an overall line.

A status is judged only on claimability (achieved or not): the plan decides
whether a not-achieved problem is "not yet sustained" or "not achieved".

The truth is written for the plan the county is generated for: a kind the plan
counts as achieved at the change itself is labelled improving once changed,
and continuous-employment dates use the plan's own qualifying periods (see
generator/famlink_generator/data/indicator_kinds.yaml achieved_at_change and ce_weeks).
A problem the plan judges by counting events (indicator_kinds.yaml count_lines) is
judged at each month end on every event the family shows, whichever problem
planted it (_truth/outcome_months.csv, see generator/famlink_generator/judge.py).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from famlink.contract import PLANS
from famlink.pipeline import RunRequest
from famlink_generator import GeneratorConfig, generate_county
from flows.monthly import run_monthly_local

NATIONAL = {1, 2, 3, 4, 5, 6}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


Months = dict[tuple[str, str, str], bool]


def read_months(truth: Path) -> Months:
    """(family_id, indicator, month end) -> achieved, for problems the truth judges on counts."""
    path = truth / "outcome_months.csv"
    if not path.exists():
        return {}
    return {(r["family_id"], r["indicator"], r["month_end"]): r["achieved"] == "1"
            for r in read_csv(path)}


def expected_status(row: dict[str, str], as_of: date, final: date,
                    months: Months | None = None) -> str | None:
    """The planted status at as_of; None inside a sustainment window (plan-dependent).

    A problem judged on the family's event counts (outcome_months.csv) has its
    truth at each month end exactly: the plan's counting windows are its sustainment.

    The truth says when behaviour changed; whether the change is sustained by
    a date depends on the plan's period (3 to 12 months), so dates between the
    change and change + 13 months are judged only at the end of the data,
    where the generator labels the trajectory exactly.
    """
    judged = (months or {}).get((row["family_id"], row["indicator"], as_of.isoformat()))
    if judged is not None:
        return "improving" if judged else (
            "not_improving" if row["trajectory"] == "not_improving" else "too_early")
    change = date.fromisoformat(row["change_on"])
    if row["trajectory"] == "not_improving" or change > as_of:
        return "not_improving" if row["trajectory"] == "not_improving" else "too_early"
    if as_of >= final:
        return "improving" if row["trajectory"] == "improving" else "too_early"
    months = (as_of.year - change.year) * 12 + as_of.month - change.month
    return "improving" if months >= 13 else None


def true_claims(truth: Path, as_of: date, final: date) -> dict[str, str]:
    """family_id -> SSP/CE for families whose claim is due by as_of (per the truth)."""
    problems: dict[str, list[dict[str, str]]] = {}
    months = read_months(truth)
    for row in read_csv(truth / "outcomes.csv"):
        if date.fromisoformat(row["attached_on"]) <= as_of:
            problems.setdefault(row["family_id"], []).append(row)
    claims: dict[str, str] = {}
    for family, rows in problems.items():
        if len({int(r["problem"]) for r in rows} & NATIONAL) < 2:
            continue
        statuses = [expected_status(r, as_of, final, months) for r in rows]
        if all(s == "improving" for s in statuses):
            claims[family] = "SSP"
        elif any(s is None for s in statuses):
            claims[family] = "?"
    for row in read_csv(truth / "employment.csv"):
        if row["qualifies_ce_on"] and date.fromisoformat(row["qualifies_ce_on"]) <= as_of \
                and row["family_id"] in problems and claims.get(row["family_id"]) != "SSP":
            if len({int(r["problem"]) for r in problems[row["family_id"]]} & NATIONAL) >= 2:
                claims[row["family_id"]] = "CE"
    return claims


@dataclass
class Judged:
    """One run compared with the truth."""

    as_of: date
    matrix: Counter[tuple[str, str]] = field(default_factory=Counter)
    classes: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    claims_new: dict[str, str] = field(default_factory=dict)
    claims_all: dict[str, str] = field(default_factory=dict)
    expected_claims: dict[str, str] = field(default_factory=dict)
    got: set[str] = field(default_factory=set)
    held: set[str] = field(default_factory=set)
    doubtful: Counter[str] = field(default_factory=Counter)
    eligible: int = 0

    @property
    def total(self) -> int:
        return sum(n for (_e, g), n in self.matrix.items() if g != "-")

    @property
    def agree(self) -> int:
        return sum(n for (e, g), n in self.matrix.items()
                   if g != "-" and (e == "improving") == (g == "achieved"))

    @property
    def false_claims(self) -> list[str]:
        return sorted(self.got - set(self.expected_claims))

    @property
    def missed_claims(self) -> list[str]:
        return sorted(set(self.expected_claims) - self.got)

    @property
    def precision(self) -> float:
        tp = len(self.got & set(self.expected_claims))
        return tp / len(self.got) if self.got else 1.0

    @property
    def recall(self) -> float:
        tp = len(self.got & set(self.expected_claims))
        return tp / len(self.expected_claims) if self.expected_claims else 1.0


def held_and_eligible(con: duckdb.DuckDBPyConnection) -> tuple[set[str], int]:
    """Families held for review and eligible families at the latest run.

    Read defensively: a warehouse from before held_for_review existed has none.
    """
    try:
        rows = con.execute(
            "SELECT family_id, decision, eligible FROM claims.assessments "
            "WHERE run_id = (SELECT max(run_id) FROM claims.assessments)").fetchall()
    except duckdb.Error:
        return set(), 0
    return {f for f, d, _e in rows if d == "held_for_review"}, sum(bool(e) for *_x, e in rows)


def doubtful_links(con: duckdb.DuckDBPyConnection) -> Counter[str]:
    """Family -> records scored against a member but linked to none (a missed claim's
    usual cause is then the linkage, not the rules). Empty for an older warehouse."""
    try:
        rows = con.execute("SELECT family_id, count(*) FROM linkage.doubtful_links "
                           "GROUP BY family_id").fetchall()
    except duckdb.Error:
        return Counter()
    return Counter(dict(rows))


def judge_run(drop: Path, warehouse: Path, as_of: date) -> Judged:
    """Compare the warehouse's statuses and claims (run at as_of) with drop/_truth."""
    truth = read_csv(drop / "_truth" / "outcomes.csv")
    months = read_months(drop / "_truth")
    last_month = max(p.name for p in drop.iterdir() if p.name[:2] == "20")
    final = date.fromisoformat(f"{last_month}-01")
    con = duckdb.connect(str(warehouse), read_only=True)
    ours = {(f, i): s for f, i, s in con.execute(
        "SELECT family_id, indicator, status FROM marts.problem_status").fetchall()}
    j = Judged(as_of)
    j.claims_new = dict(con.execute("SELECT family_id, claim_type FROM claims.current_claims "
                                    "WHERE as_of = ?", [as_of]).fetchall())
    j.claims_all = dict(con.execute(
        "SELECT family_id, claim_type FROM claims.current_claims").fetchall())
    j.held, j.eligible = held_and_eligible(con)
    j.doubtful = doubtful_links(con)
    con.close()
    for row in truth:
        if date.fromisoformat(row["attached_on"]) > as_of:
            continue
        key = (row["family_id"], row["indicator"])
        expected = expected_status(row, as_of, final, months)
        if expected is None:
            j.matrix[("(within a sustainment window: not judged)", "-")] += 1
            continue
        got = ours.get(key, "missing")
        j.matrix[(expected, got)] += 1
        if (expected == "improving") != (got == "achieved"):
            j.classes[(row["indicator"], row["kind"], expected, got)] += 1
            j.wrong.append(f"{key[0]} {key[1]} ({row['kind']}): truth {expected} "
                           f"changed {row['change_on']}, ours {got}")
    expected_claims = true_claims(drop / "_truth", as_of, final)
    unsure = {f for f, t in expected_claims.items() if t == "?"}
    j.expected_claims = {f: t for f, t in expected_claims.items() if t != "?"}
    j.got = set(j.claims_all) - unsure
    return j


def compare_plan(plan: str, seed: int, as_ofs: list[date], families: int | None,
                 residents: int | None, work: Path, show: int = 15,
                 conventions: str = "default") -> list[Judged]:
    """Generate one county, run the monthly job at each date on one warehouse, judge each."""
    drop = work / f"{plan}-{seed}" / "drop"
    warehouse = work / f"{plan}-{seed}" / "warehouse.duckdb"
    started = time.perf_counter()
    summary = generate_county(GeneratorConfig(out_dir=drop, plan=plan, seed=seed,
                                              cohort_families=families, residents=residents,
                                              conventions=conventions))  # type: ignore[arg-type]
    print(f"\n== {plan} seed {seed}: generated in {time.perf_counter() - started:.1f}s",
          flush=True)
    if conventions != "default":
        print("   conventions: " + ", ".join(
            f"{k}={v}" for k, v in sorted(summary.conventions.items())))
    claimed_ever: Counter[str] = Counter()
    judged: list[Judged] = []
    for as_of in as_ofs:
        started = time.perf_counter()
        run_monthly_local(RunRequest(extracts=drop, warehouse=warehouse, plan=plan, as_of=as_of))
        seconds = time.perf_counter() - started
        j = judge_run(drop, warehouse, as_of)
        judged.append(j)
        claimed_ever.update(j.claims_new.keys())
        total, agree = j.total, j.agree
        print(f"-- as of {as_of}: run {seconds:.1f}s; problems {total}, claimability agrees "
              f"{agree}/{total} = {agree / total if total else 1:.3f}")
        for (e, g), n in sorted(j.matrix.items()):
            print(f"   truth {e:<14} ours {g:<18} {n}")
        print(f"   claims standing {len(j.got)} (new at this run {len(j.claims_new)}), "
              f"true {len(j.expected_claims)}: precision {j.precision:.3f}, "
              f"recall {j.recall:.3f}; held for review {len(j.held)} of {j.eligible} "
              f"eligible ({share(len(j.held), j.eligible)})")
        for family in j.false_claims:
            print(f"   FALSE CLAIM {family} {j.claims_all[family]}")
        for family in j.missed_claims:
            doubt = (f" ({j.doubtful[family]} doubtful link(s): linkage refused a record"
                     " that may be a member's)" if j.doubtful[family] else "")
            print(f"   missed claim {family} {j.expected_claims[family]}{doubt}")
        for (ind, kind, e, g), n in sorted(j.classes.items()):
            print(f"   class {ind} {kind}: truth {e}, ours {g}: {n}")
        for line in j.wrong[:show]:
            print(f"   disagree: {line}")
    twice = [f for f, n in claimed_ever.items() if n > 1]
    print(f"   families claimed at more than one run: {len(twice)}", flush=True)
    return judged


def share(n: int, d: int) -> str:
    return f"{n / d:.1%}" if d else "-"


def print_table(rows: list[tuple[str, int, Judged]], conventions: str) -> None:
    """Per plan, seed and date: precision, recall, held; then the overall line."""
    print(f"\n== claims against the truth (conventions: {conventions}; held families count "
          "as not claimed)")
    print(f"{'plan':<22}{'seed':>5}  {'as of':<11}{'claims':>7}{'true':>6}{'precision':>10}"
          f"{'recall':>8}{'held':>6}{'eligible':>9}{'held %':>8}")
    tp = got = true = held = eligible = 0
    for plan, seed, j in rows:
        hit = len(j.got & set(j.expected_claims))
        tp, got, true = tp + hit, got + len(j.got), true + len(j.expected_claims)
        held, eligible = held + len(j.held), eligible + j.eligible
        print(f"{plan:<22}{seed:>5}  {j.as_of.isoformat():<11}{len(j.got):>7}"
              f"{len(j.expected_claims):>6}{j.precision:>10.3f}{j.recall:>8.3f}"
              f"{len(j.held):>6}{j.eligible:>9}{share(len(j.held), j.eligible):>8}")
    print(f"{'overall':<22}{'':>5}  {'':<11}{got:>7}{true:>6}"
          f"{tp / got if got else 1:>10.3f}{tp / true if true else 1:>8.3f}{held:>6}"
          f"{eligible:>9}{share(held, eligible):>8}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", default=",".join(PLANS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", default=None, help="comma-separated; overrides --seed")
    parser.add_argument("--conventions", choices=("default", "varied"), default="default",
                        help="varied: recording conventions drawn per county from its seed")
    parser.add_argument("--as-of", default="2024-06-30,2024-12-31")
    parser.add_argument("--families", type=int, default=None)
    parser.add_argument("--residents", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--show", type=int, default=15, help="disagreements listed per run")
    args = parser.parse_args()
    as_ofs = sorted(date.fromisoformat(d) for d in args.as_of.split(","))
    work = args.work or Path(tempfile.mkdtemp(prefix="famlink-outcomes-"))
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    rows: list[tuple[str, int, Judged]] = []
    for plan in args.plans.split(","):
        for seed in seeds:
            for j in compare_plan(plan, seed, as_ofs, args.families, args.residents, work,
                                  args.show, args.conventions):
                rows.append((plan, seed, j))
    print_table(rows, args.conventions)


if __name__ == "__main__":
    main()
