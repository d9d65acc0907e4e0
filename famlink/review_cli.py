"""``famlink review``: the families held because a doubtful record would undo an outcome.

``famlink review --warehouse FILE [--out FILE.csv]`` lists the held pairs of the
latest run; ``famlink review decide PAIR_ID --same|--different`` records a
reviewer's decision, which the next run applies. Only ids, probabilities and
reasons are printed: the names and DOBs behind a pair are in the linkage
report's clerical review list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from famlink.claims.review import login_name
from famlink.terminal import console, error

review_app = typer.Typer(add_completion=False, no_args_is_help=False,
                         help="Held claims: doubtful pairs to review, and decisions on them.")
LOGIN_NAME = login_name()   # --by's default wherever a person's name is recorded


@review_app.callback(invoke_without_command=True)
def review(
    ctx: typer.Context,
    warehouse: Annotated[Path | None, typer.Option("--warehouse",
                                                   help="DuckDB warehouse file.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the list as CSV.")] = None,
) -> None:
    """List the pairs holding families' claims at the latest run."""
    if ctx.invoked_subcommand is not None:
        return
    if warehouse is None:
        raise error("--warehouse is required (famlink review --help lists the options)")
    import duckdb

    from famlink.claims.returns import PAYMENT_GBP
    from famlink.claims.review import held_rows, write_review_csv

    if not warehouse.exists():
        raise error(f"warehouse {warehouse} does not exist")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = held_rows(con)
    finally:
        con.close()
    families = sorted({str(r["family_id"]) for r in rows})
    pairs = len({r["pair_id"] for r in rows})
    # one line per pair and record: ids stay whole however narrow the terminal
    if rows:
        console.print("[bold]Claims held for review (latest run)[/bold]")
    for r in rows:
        decided = f"; decided {r['decision']}" if r["decision"] else ""
        console.print(f"{r['pair_id']}  family {r['family_id']}  member {r['person_ref']}  "
                      f"{r['extract']} {r['record_key']}  p={float(r['match_probability']):.4f}"
                      f"  {r['reason']}  contradicts {r['indicator']} "
                      f"({r['status_if_same']} if same){decided}", highlight=False,
                      soft_wrap=True)
    console.print(f"{len(families)} families held for review (GBP "
                  f"{len(families) * PAYMENT_GBP:,} held back), {pairs} "
                  "pairs; decide each with: famlink review decide PAIR_ID --same|--different "
                  "--warehouse FILE --reason TEXT", highlight=False)
    if out is not None:
        write_review_csv(rows, out)
        console.print(f"written {escape(str(out))}", highlight=False)


@review_app.command()
def decide(
    pair_id: Annotated[str, typer.Argument(help="The pair, as famlink review lists it.")],
    warehouse: Annotated[Path, typer.Option("--warehouse", help="DuckDB warehouse file.")],
    same: Annotated[bool | None, typer.Option(
        "--same/--different", help="One person (merge) or two (release the hold).")] = None,
    reason: Annotated[str, typer.Option("--reason", help="What the reviewer checked.")] = "",
    by: Annotated[str, typer.Option("--by", help="Who decides (default: your login name).",
                                    metavar="NAME")] = LOGIN_NAME,
) -> None:
    """Record a decision on a doubtful pair; the next run applies it."""
    from famlink.claims.review import record_decision

    if same is None:
        raise error("say --same or --different")
    decision = "same" if same else "different"
    try:
        person_ref = record_decision(warehouse, pair_id, decision, by or None, reason)
    except (FileNotFoundError, ValueError) as exc:
        raise error(str(exc)) from None
    what = ("its records will be linked to" if same else "its hold is released for")
    console.print(f"pair {escape(pair_id)} decided {decision}: at the next run {what} "
                  f"{escape(person_ref)}", highlight=False)
