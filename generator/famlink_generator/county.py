"""generate_county: build the county, plant the cohort, stream every month's deliveries."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date

from .calendar import last_ended_term, month_end, month_start, o, term_year
from .cohort import select_families
from .config import GenerateSummary, GeneratorConfig
from .conventions import Conventions, draw
from .people import build_county
from .sources import SCHOOL_MONTHS, Sources, people_truth
from .trajectories import Timeline, plan_cohort
from .truth import Truth

Progress = Callable[[str, int, int], None]


def _last_att_term(start: date, months: int) -> int:
    """Latest school term whose attendance is delivered within the data window."""
    best = -1
    for m in range(months):
        first = month_start(start.year, start.month, m)
        if first.month in SCHOOL_MONTHS:
            best = max(best, last_ended_term(o(first)))
    if best < 0:  # no school delivery in the window: nothing can be sustained
        best = last_ended_term(o(start)) - 3
    return best


def generate_county(cfg: GeneratorConfig, progress: Progress | None = None) -> GenerateSummary:
    """Write out_dir/YYYY-MM/<extract>.csv for every month, plus out_dir/_truth/."""
    def tick(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    y, mo = (int(x) for x in cfg.start_month.split("-"))
    start = date(y, mo, 1)
    end = o(month_end(month_start(y, mo, cfg.months - 1)))
    out = cfg.out_dir
    for child in out.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]") if out.exists() else []:
        shutil.rmtree(child)
    if (out / "_truth").exists():
        shutil.rmtree(out / "_truth")
    out.mkdir(parents=True, exist_ok=True)

    tick("population", 0, 1)
    county = build_county(cfg.n_residents(), cfg.seed, o(start))
    tick("population", 1, 1)
    fams = select_families(county, cfg.n_families(), cfg.seed, o(start), cfg.months)
    tl = Timeline(o(start), end, _last_att_term(start, cfg.months))
    planted = plan_cohort(county, fams, cfg.plan, cfg.seed, tl)
    tick("cohort", 1, 1)

    truth = Truth(out)
    # drawn after the simulation, from their own streams: the truth cannot depend on them
    chosen = draw(cfg.seed, cfg.conventions, cfg.conventions_override)
    src = Sources(county, fams, planted, cfg.seed, out, start, cfg.months, cfg.backlog_months,
                  truth, cfg.plant_faults, Conventions(cfg.seed, chosen))
    for m in range(cfg.months):
        src.write_month(m)
        tick("months", m + 1, cfg.months)

    people_truth(county, fams, truth)
    for f in fams:
        for pr in f.problems:
            truth.row("outcomes.csv", [
                f.family_id, pr.indicator,
                f.person_ref[pr.person] if pr.person is not None else "", pr.indicator[0],
                pr.kind, pr.trajectory, date.fromordinal(pr.change_on).isoformat(),
                date.fromordinal(f.attached_on).isoformat()])
    for fid, ind, m, ok in planted.outcome_months:
        truth.row("outcome_months.csv", [fid, ind, date.fromordinal(m).isoformat(), int(ok)])
    for fid, ref, ben, off, emp_start, q in planted.employment_truth:
        truth.row("employment.csv", [fid, ref, ben, date.fromordinal(off).isoformat(),
                                     date.fromordinal(emp_start).isoformat(),
                                     date.fromordinal(q).isoformat() if q else ""])
    months = [src.month_label(m) for m in range(cfg.months)]
    total_bytes = sum(p.stat().st_size for mth in months for p in (out / mth).iterdir())
    rows = sum(sum(v.values()) for v in src.counts.values())
    files = sum(len(v) for v in src.counts.values())
    plain = cfg.conventions == "default" and not cfg.conventions_override
    extra = {} if plain else {"conventions": chosen,
                              "service_names": src.conv.service
                              if chosen["service_names"] != "generator" else {}}
    truth.manifest({
        **extra,
        # the default run's manifest stays as it was before conventions existed
        "config": cfg.model_dump(mode="json", exclude={"out_dir"} | (
            {"conventions", "conventions_override"} if plain else set())),
        "seed": cfg.seed, "plan": cfg.plan,
        "months": months, "counts": src.counts, "bytes": total_bytes,
        "residents": county.n, "households": len(county.hh_start),
        "cohort_families": len(fams), "cohort_people": sum(len(f.members) for f in fams),
        "planted_faults": truth.faults, "last_attendance_term": tl.last_att_term,
        "last_attendance_year": term_year(tl.last_att_term),
    })
    truth.close()
    tick("done", 1, 1)
    return GenerateSummary(
        out_dir=out, plan=cfg.plan, seed=cfg.seed, months=months, residents=county.n,
        households=len(county.hh_start), cohort_families=len(fams),
        cohort_people=sum(len(f.members) for f in fams), files_written=files,
        rows_written=rows, planted_faults=truth.faults, bytes_written=total_bytes,
        counts=src.counts, conventions=chosen)
