"""The run report: one self-contained HTML page per monthly run, beside the warehouse.

``reports/run_<as-of>.html`` says what a run did in figures a manager can check
against the return: what each extract delivered, how the linkage went, which
problems turned around, what was claimed and held back, and what changed since
the last run. It shows counts, never persons. Everything is inline (plain SVG
charts, one small style sheet, no scripts): it opens on a council laptop
without internet.

The figures are read from the warehouse the run built, just before it is
published, so a back-run (whose copy is discarded) has a report too; it is
named ``run_<as-of>_back-run.html`` and never replaces a recorded run's page.

The page header (plan, as-of, run id, code and model versions) is
``page_header``, shared with the linkage report (matchers/report.py).
"""

from __future__ import annotations

import hashlib
import html
import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from famlink import __version__

QUERIES_PATH = Path(__file__).with_name("run_report.sql")
REPORTS_FOLDER = "reports"
STATUSES = ("achieved", "not_yet_sustained", "not_achieved")
STATUS_COLOURS = {"achieved": "#2e7d32", "not_yet_sustained": "#f0a202",
                  "not_achieved": "#b23b3b"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1180px;padding:0 1em;color:#222}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;max-width:100%}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;
overflow-wrap:anywhere;word-break:break-word}
table:not(.wide) td:first-child{white-space:nowrap}
th{background:#eef}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.wide{width:100%;font-size:12px;table-layout:fixed}
.header{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;background:#f6f7fb;
border:1px solid #dde;padding:8px 12px;font-size:14px}
.header dt{font-weight:600}.header dd{margin:0;overflow-wrap:anywhere}
.figures{display:flex;flex-wrap:wrap;gap:10px}.figure{border:1px solid #dde;padding:6px 12px;
min-width:150px}.figure b{display:block;font-size:22px}.note{color:#555;font-size:13px}
svg{max-width:100%;height:auto}.warn{color:#b23b3b}
"""


# -- the shared page -----------------------------------------------------------------------

@dataclass(frozen=True)
class ReportHeader:
    """What every report says it is about: the run, and the code and model that made it."""

    plan: str
    as_of: date | None
    run_id: int | None
    recorded_at: datetime | None = None
    back_run: bool = False


def git_commit() -> str | None:
    """The checkout's short commit, when famlink runs from a git checkout (else None)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=10", "HEAD"],
                              capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{7,40}", commit) else None


def code_version() -> str:
    commit = git_commit()
    return f"famlink {__version__}" + (f" (git {commit})" if commit else "")


def model_version(path: Path | None = None) -> str:
    """The linkage model as used: its file, the first 12 hex of its sha256, when trained."""
    from matchers.probabilistic import DEFAULT_MODEL_PATH

    path = path or DEFAULT_MODEL_PATH
    if not path.exists():
        return "untrained defaults (no model file)"
    return _model_version(path, path.stat().st_mtime_ns)


@cache
def _model_version(path: Path, _mtime: int) -> str:
    import json

    data = path.read_bytes()
    trained = (json.loads(data).get("famlink") or {}).get("trained_at")
    return (f"{path.name} sha256 {hashlib.sha256(data).hexdigest()[:12]}"
            + (f", trained {trained}" if trained else ""))


def page_header(title: str, header: ReportHeader) -> str:
    """The one header of every famlink report: title, run, plan, as-of, versions."""
    e = html.escape
    run = "none recorded" if header.run_id is None else str(header.run_id)
    if header.back_run:
        run += " (back-run: evaluated, nothing recorded)"
    rows = [("Plan", header.plan, "plan"),
            ("As-of", header.as_of.isoformat() if header.as_of else "", "as-of"),
            ("Run id", run, "run-id"),
            ("Run recorded at", header.recorded_at.isoformat(sep=" ", timespec="seconds")
             if header.recorded_at else "", "recorded-at"),
            ("Code", code_version(), "code-version"),
            ("Linkage model", model_version(), "model-version")]
    items = "".join(f'<dt>{e(label)}</dt><dd data-header="{e(key)}">{e(value)}</dd>'
                    for label, value, key in rows)
    return f'<h1>{e(title)}</h1><dl class="header">{items}</dl>'


def header_from_warehouse(con: duckdb.DuckDBPyConnection, back_run: bool = False
                          ) -> ReportHeader:
    """The header of the latest run a warehouse (or a run's copy) holds."""
    try:
        row = con.execute("SELECT run_id, plan, as_of, recorded_at FROM claims.runs "
                          "ORDER BY run_id DESC LIMIT 1").fetchone()
    except duckdb.CatalogException:
        row = None
    if row is None:
        return ReportHeader(plan="", as_of=None, run_id=None, back_run=back_run)
    return ReportHeader(plan=row[1], as_of=row[2], run_id=int(row[0]), recorded_at=row[3],
                        back_run=back_run)


def html_page(title: str, header: ReportHeader, body: str) -> str:
    """A whole page: the shared style and header, then the body (already escaped)."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"{page_header(title, header)}{body}</body></html>")


def html_table(rows: list[tuple], headers: list[str], css: str = "",
               data_key: str | None = None, widths: list[int] | None = None) -> str:
    """A table of escaped values; numbers right-aligned; ``data_key`` marks each row with
    its first cell as ``data-<key>`` and each cell with its column, for tests and scripts.
    ``widths`` (percentages) fix the columns of a wide table so it fits the page."""
    e = html.escape

    def cell(value: Any, column: str) -> str:
        text = "" if value is None else (f"{value:,}" if isinstance(value, int)
                                         and not isinstance(value, bool) else str(value))
        number = isinstance(value, int | float) and not isinstance(value, bool)
        attrs = ' class="n"' if number else ""
        if data_key:
            attrs += f' data-col="{e(column)}"'
            if number:
                attrs += f' data-value="{e(str(value))}"'
        return f"<td{attrs}>{e(text)}</td>"

    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join(
        (f'<tr data-{data_key}="{e(str(r[0]))}">' if data_key else "<tr>")
        + "".join(cell(v, headers[i]) for i, v in enumerate(r)) + "</tr>"
        for r in rows)
    klass = f' class="{css}"' if css else ""
    cols = ("<colgroup>" + "".join(f'<col style="width:{int(w)}%">' for w in widths)
            + "</colgroup>") if widths else ""
    return f"<table{klass}>{cols}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# -- charts (plain SVG with labelled axes) -------------------------------------------------

def _nice_step(top: float, ticks: int = 5) -> float:
    raw = max(top, 1) / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def bar_chart_svg(categories: list[str], series: list[tuple[str, str, list[int]]], *,
                  y_label: str, x_label: str, log: bool = False, width: int = 760,
                  height: int = 300, marker: tuple[float, str] | None = None) -> str:
    """Stacked vertical bars with a y-axis scale, axis titles and a legend.

    ``series`` is (name, colour, one value per category). ``log`` draws counts on a
    log scale (ticks 1, 10, 100, ...), for a histogram whose bins differ by orders
    of magnitude. ``marker`` is (position in category units, label): a dashed line.
    """
    e = html.escape
    if not categories:
        return '<p class="note">Nothing to chart.</p>'
    left, right, top_pad, bottom = 64, 16, 28 if len(series) > 1 else 14, 46
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    band = plot_w / len(categories)
    every = max(1, math.ceil(len(categories) / 16))        # label every n-th category
    longest = max(len(c) for c in categories)
    slanted = longest * 6.5 > band * every                  # labels would touch: slant them
    if slanted:
        bottom += 3 * longest
        height += 3 * longest
    totals = [sum(s[2][i] for s in series) for i in range(len(categories))]
    top = max(max(totals), 1)
    if log:
        decades = max(1, math.ceil(math.log10(top + 1)))
        ticks = [0, *(10 ** k for k in range(decades + 1))]

        def scale(v: float) -> float:
            return plot_h * math.log10(1 + v) / math.log10(1 + ticks[-1])
    else:
        step = _nice_step(top)
        ticks = [step * k for k in range(int(math.ceil(top / step)) + 1)]

        def scale(v: float) -> float:
            return plot_h * v / ticks[-1]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(y_label)} by '
             f'{e(x_label)}" font-family="sans-serif">']
    for t in ticks:
        y = top_pad + plot_h - scale(t)
        label = f"{t:,.0f}" if float(t).is_integer() else f"{t:,.1f}"
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#e3e3e3"/><text x="{left - 6}" y="{y + 4:.1f}" font-size="11" '
                     f'text-anchor="end" data-tick="{t}">{label}</text>')
    bar_w = max(band * 0.8, 1)
    for i, name in enumerate(categories):
        x = left + i * band + (band - bar_w) / 2
        base = 0.0
        for series_name, colour, values in series:
            v = values[i]
            if v:
                y0, y1 = scale(base), scale(base + v)
                parts.append(
                    f'<rect x="{x:.1f}" y="{top_pad + plot_h - y1:.1f}" width="{bar_w:.1f}" '
                    f'height="{max(y1 - y0, 0.5):.1f}" fill="{colour}"><title>{e(name)}: '
                    f'{v:,} {e(series_name)}</title></rect>')
            base += v
        if i % every == 0:
            cx, ly = left + i * band + band / 2, top_pad + plot_h + 14
            turn = f' transform="rotate(-25 {cx:.1f} {ly})"' if slanted else ""
            parts.append(f'<text x="{cx:.1f}" y="{ly}" font-size="11"{turn} '
                         f'text-anchor="{"end" if slanted else "middle"}">{e(name)}</text>')
    if marker is not None:
        position, text = marker
        mx = left + position * band
        parts.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top_pad}" '
                     f'y2="{top_pad + plot_h}" stroke="#c0392b" stroke-dasharray="4"/>'
                     f'<text x="{mx - 4:.1f}" y="{top_pad + 10}" font-size="11" fill="#c0392b" '
                     f'text-anchor="end">{e(text)}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top_pad}" y2="{top_pad + plot_h}" '
                 f'stroke="#444"/><line x1="{left}" x2="{left + plot_w}" '
                 f'y1="{top_pad + plot_h}" y2="{top_pad + plot_h}" stroke="#444"/>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" font-size="12" '
                 f'text-anchor="middle">{e(x_label)}</text>')
    parts.append(f'<text transform="translate(14 {top_pad + plot_h / 2:.1f}) rotate(-90)" '
                 f'font-size="12" text-anchor="middle">{e(y_label)}</text>')
    if len(series) > 1:
        x = left
        for series_name, colour, _ in series:
            parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{colour}"/>'
                         f'<text x="{x + 16}" y="14" font-size="12">{e(series_name)}</text>')
            x += 24 + 7 * len(series_name)
    parts.append("</svg>")
    return "".join(parts)


# -- the figures ---------------------------------------------------------------------------

@cache
def _queries() -> dict[str, str]:
    text = QUERIES_PATH.read_text(encoding="utf-8")
    found = re.findall(r"^-- name: (\w+)\n(.*?)(?=^-- name: |\Z)", text, flags=re.M | re.S)
    return {name: body.strip().rstrip(";") for name, body in found}


def _query(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[tuple]:
    sql = _queries()[name]
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    try:
        return con.execute(sql, used).fetchall()
    except duckdb.CatalogException:        # a schema a first, empty run has not made yet
        return []


@dataclass
class ExtractRow:
    extract: str
    files_this_run: int
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    values_flagged: int
    rows_loaded_all_runs: int
    latest_delivery: str = ""
    complete_to: str = ""
    missing_months: int = 0


@dataclass
class RunReportData:
    """Everything the page shows, read from the built warehouse (counts only)."""

    header: ReportHeader
    payment_gbp: int
    previous_run: tuple[int, date] | None = None
    extracts: list[ExtractRow] = field(default_factory=list)
    rejected: int = 0
    flagged: int = 0
    previous_rejected: int | None = None
    previous_flagged: int | None = None
    probabilities: list[float] = field(default_factory=list)
    links: list[tuple[str, int, int]] = field(default_factory=list)
    clerical_review: int = 0
    doubtful_links: int = 0
    undecided_doubtful: int = 0
    outcomes: dict[int, dict[str, int]] = field(default_factory=dict)
    problem_names: dict[int, str] = field(default_factory=dict)
    claims: dict[str, int] = field(default_factory=dict)
    new_claims: dict[str, int] = field(default_factory=dict)
    held_families: int = 0
    held_pairs: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    withdrawals: int = 0

    @property
    def claims_total(self) -> int:
        return sum(self.claims.values())

    @property
    def new_claims_total(self) -> int:
        return sum(self.new_claims.values())


def month_end(month: str) -> str:
    """``2024-06`` -> ``2024-06-30``."""
    year, mon = (int(p) for p in month.split("-"))
    following = date(year + mon // 12, mon % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1).isoformat()


def completeness(months: list[tuple[str, str]], as_of_month: str) -> tuple[str, str, int]:
    """(latest delivered month, complete-to date, months missing) of one extract.

    Complete to: the end of the month before the first month that was due and
    not delivered (missing or empty); the as-of month's end when none was.
    """
    delivered = [m for m, s in months if s == "delivered"]
    gaps = [m for m, s in months if s in ("missing", "empty") and m <= as_of_month]
    if gaps:
        first = gaps[0]
        before = [m for m, _ in months if m < first]
        complete = month_end(before[-1]) if before else "nothing complete"
    else:
        complete = month_end(as_of_month)
    return (delivered[-1] if delivered else "none"), complete, len(gaps)


def _problem_names(plan: str) -> dict[int, str]:
    """The headline problems' names where the rules define them (rules.national)."""
    try:
        from rules import national
    except ImportError:
        return {}
    names = getattr(national, "problem_names", None)
    if names is None:
        return {}
    try:
        return dict(names(plan))
    except Exception:  # noqa: BLE001  (a name is a nicety: the number is shown anyway)
        return {}


def collect_run_report(con: duckdb.DuckDBPyConnection, request: Any,
                       back_run: bool = False) -> RunReportData:
    """Read the page's figures from the run's connection (after the claims step)."""
    from famlink.claims.returns import PAYMENT_GBP

    header = header_from_warehouse(con, back_run)
    if header.plan == "":
        header = ReportHeader(plan=request.plan, as_of=request.as_of, run_id=None,
                              back_run=back_run)
    run_id = header.run_id if header.run_id is not None else -1
    data = RunReportData(header=header, payment_gbp=PAYMENT_GBP,
                         problem_names=_problem_names(request.plan))
    previous = _query(con, "previous_run", run_id=run_id)
    data.previous_run = (int(previous[0][0]), previous[0][1]) if previous else None
    previous_run_id = data.previous_run[0] if data.previous_run else -1

    loads = _rows_or_empty(con, "SELECT load_id FROM meta.loads ORDER BY load_id DESC LIMIT 2")
    load_id = int(loads[0][0]) if loads else -1
    previous_load_id = int(loads[1][0]) if len(loads) > 1 else -1
    months: dict[str, list[tuple[str, str]]] = {}
    for extract, month, status in _query(con, "delivery_months",
                                         as_of_month=request.as_of_month):
        months.setdefault(extract, []).append((month, status))
    for row in _query(con, "extracts", load_id=load_id):
        item = ExtractRow(row[0], *(int(v) for v in row[1:]))
        item.latest_delivery, item.complete_to, item.missing_months = completeness(
            months.get(item.extract, []), request.as_of_month)
        data.extracts.append(item)
    rejects = _query(con, "rejects_by_load", load_id=load_id, previous_load_id=previous_load_id)
    if rejects:
        data.rejected, data.flagged = int(rejects[0][0]), int(rejects[0][1])
        if previous_load_id != -1:
            data.previous_rejected, data.previous_flagged = (int(rejects[0][2]),
                                                             int(rejects[0][3]))

    data.probabilities = [float(p) for (p,) in _query(con, "probabilities")]
    data.links = [(e, int(a), int(b)) for e, a, b in _query(con, "links_per_source")]
    data.clerical_review = _scalar(_query(con, "clerical_review"))
    doubt = _query(con, "doubtful_links")
    if doubt:
        data.doubtful_links, data.undecided_doubtful = int(doubt[0][0]), int(doubt[0][1])

    for problem, status, count in _query(con, "outcomes", as_of=request.as_of):
        data.outcomes.setdefault(int(problem), {})[str(status)] = int(count)
    data.claims = {str(t): int(n) for t, n in _query(con, "claims_at", as_of=request.as_of)}
    data.new_claims = {str(t): int(n) for t, n in _query(con, "new_claims", run_id=run_id)}
    data.held_families = _scalar(_query(con, "held", run_id=run_id))
    data.held_pairs = _scalar(_query(con, "held_pairs", run_id=run_id))
    data.decisions = {str(d): int(n) for d, n in _query(con, "decisions", run_id=run_id)}
    data.withdrawals = _scalar(_query(con, "withdrawals_since", previous_run_id=previous_run_id))
    return data


def _rows_or_empty(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    try:
        return con.execute(sql).fetchall()
    except duckdb.CatalogException:
        return []


def _scalar(rows: list[tuple]) -> int:
    return int(rows[0][0] or 0) if rows else 0


# -- the page ------------------------------------------------------------------------------

def _figure(label: str, value: int | str, key: str, gbp: bool = False) -> str:
    shown = f"£{value:,}" if gbp and isinstance(value, int) else (
        f"{value:,}" if isinstance(value, int) else str(value))
    return (f'<div class="figure"><b data-figure="{html.escape(key)}" '
            f'data-value="{html.escape(str(value))}">{html.escape(shown)}</b>'
            f"{html.escape(label)}</div>")


def probability_histogram_svg(probabilities: list[float], threshold: float = 0.9) -> str:
    """Scored pairs in 20 bins of match probability, counts on a labelled log scale."""
    if not probabilities:
        return '<p class="note">No pairs were scored by the model.</p>'
    counts = [0] * 20
    for p in probabilities:
        counts[min(int(p * 20), 19)] += 1
    names = [f"{i * 0.05:.2f}" for i in range(20)]
    return bar_chart_svg(names, [("pairs", "#4a7ab5", counts)], log=True,
                         y_label="scored pairs (log scale)",
                         x_label="match probability (bin from)",
                         marker=(threshold * 20, f"link threshold {threshold}"))


def render_run_report(data: RunReportData) -> str:
    """The page, every value escaped (counts and codes only: no person appears)."""
    e = html.escape
    gbp = data.payment_gbp
    h = data.header
    sections: list[str] = []
    if h.back_run:
        sections.append('<p class="warn">A back-run: the figures are what a run at this as-of '
                        "finds now; nothing was recorded in the ledger.</p>")
    verb = "would be recorded" if h.back_run else "claimed"
    sections.append('<h2>Headline</h2><div class="figures">' + "".join([
        _figure(f"claims in the return for {h.as_of}", data.claims_total, "claims"),
        _figure("value of those claims", data.claims_total * gbp, "claims-gbp", gbp=True),
        _figure(f"new claims this run ({verb})", data.new_claims_total, "new-claims"),
        _figure("families held for review", data.held_families, "held-families"),
        _figure("value held back", data.held_families * gbp, "held-gbp", gbp=True),
        _figure("rows loaded this run", sum(x.rows_loaded for x in data.extracts),
                "rows-loaded"),
        _figure("rows rejected this run", data.rejected, "rows-rejected"),
        _figure("values flagged this run", data.flagged, "values-flagged"),
    ]) + "</div>")

    rows = [(x.extract, x.files_this_run, x.rows_read, x.rows_loaded, x.rows_rejected,
             x.values_flagged, x.rows_loaded_all_runs, x.latest_delivery, x.complete_to,
             x.missing_months) for x in data.extracts]
    sections.append(
        "<h2>Extracts</h2><p class=\"note\">This run's load of each extract (rows read = "
        "loaded + rejected), every load's rows, and how far each source's data is complete: "
        "up to the first month that was due and not delivered.</p>"
        + html_table(rows, ["extract", "files loaded", "rows read", "rows loaded",
                            "rows rejected", "values flagged", "rows loaded (all runs)",
                            "latest delivery", "data complete to", "months missing"],
                     data_key="extract"))

    sections.append("<h2>Linkage quality</h2><div class=\"figures\">" + "".join([
        _figure("pairs scored by the model", len(data.probabilities), "pairs-scored"),
        _figure("pairs for clerical review", data.clerical_review, "clerical-review"),
        _figure("doubtful links", data.doubtful_links, "doubtful-links"),
        _figure("doubtful links undecided", data.undecided_doubtful, "doubtful-undecided"),
    ]) + "</div><h3>Match probability of scored pairs</h3>"
        + probability_histogram_svg(data.probabilities)
        + "<h3>Records per source linked to a cohort member</h3>"
        + bar_chart_svg([x for x, _, _ in data.links],
                        [("linked to a member", "#2e7d32", [a for _, a, _ in data.links]),
                         ("not a member's", "#b0bec5", [b for _, _, b in data.links])],
                        y_label="records", x_label="extract", height=320)
        + html_table(data.links, ["extract", "linked to a member", "not a member's"],
                     data_key="links"))

    problems = sorted(data.outcomes)
    names = [f"{p}" for p in problems]
    sections.append(
        "<h2>Outcomes per headline problem</h2><p class=\"note\">Identified problems of "
        f"the cohort's families by status at {e(str(h.as_of))}.</p>"
        + bar_chart_svg(names, [(s.replace("_", " "), STATUS_COLOURS[s],
                                 [data.outcomes[p].get(s, 0) for p in problems])
                                for s in STATUSES],
                        y_label="identified problems", x_label="headline problem")
        + html_table([(p, *([data.problem_names.get(p, "")] if data.problem_names else []),
                       *(data.outcomes[p].get(s, 0) for s in STATUSES)) for p in problems],
                     ["problem", *(["name"] if data.problem_names else []),
                      *(s.replace("_", " ") for s in STATUSES)],
                     data_key="problem"))

    claim_rows = [(t, data.claims.get(t, 0), data.claims.get(t, 0) * gbp,
                   data.new_claims.get(t, 0)) for t in sorted({*data.claims, *data.new_claims})]
    claim_rows.append(("total", data.claims_total, data.claims_total * gbp,
                       data.new_claims_total))
    decision_rows = sorted(data.decisions.items())
    sections.append(
        f"<h2>Claims and held families</h2><p class=\"note\">£{gbp:,} per claim. Held "
        "families have a claim due that a doubtful link would undo: not claimed until a "
        "reviewer decides (famlink review).</p>"
        + html_table(claim_rows, ["claim type", f"claims at {h.as_of}", "value (£)",
                                  "new this run"], data_key="claim-type")
        + "<h3>This run's decision per family</h3>"
        + html_table(decision_rows, ["decision", "families"], data_key="decision")
        + f'<p>Held for review: <b>{data.held_families:,}</b> '
          f"families (£{data.held_families * gbp:,} held back), {data.held_pairs:,} doubtful "
          "pairs behind them.</p>")

    if data.previous_run is None:
        since = "<p>The warehouse's first run: nothing to compare with.</p>"
    else:
        prev_id, prev_as_of = data.previous_run
        since = (f"<p>Compared with run {prev_id:,} (as-of {e(str(prev_as_of))}).</p>")
    previous_rejects = ("" if data.previous_rejected is None else
                        f"{data.previous_rejected:,} rejected, {data.previous_flagged:,} flagged")
    change_rows = [("new claims", data.new_claims_total),
                   ("withdrawals since the previous run", data.withdrawals),
                   ("rows rejected by this run's load", data.rejected),
                   ("values flagged by this run's load", data.flagged)]
    sections.append(
        "<h2>What changed since the last run</h2>" + since
        + html_table(change_rows, ["change", "count"], data_key="change")
        + (f"<p class=\"note\">The previous run's load: {e(previous_rejects)}. "
           "famlink rejects lists every reject with its reason.</p>" if previous_rejects
           else ""))
    return html_page("Monthly run report", h, "".join(sections))


def run_report_path(warehouse: Path, as_of: date, back_run: bool = False) -> Path:
    """``reports/run_<as-of>.html`` beside the warehouse (``_back-run`` for a back-run)."""
    name = f"run_{as_of.isoformat()}{'_back-run' if back_run else ''}.html"
    return Path(warehouse).resolve().parent / REPORTS_FOLDER / name


def report_run(request: Any, data: RunReportData) -> Path:
    """Write the run report beside the warehouse (owner-only), a step of every run."""
    from famlink.warehouse import make_private, make_private_dir

    out = run_report_path(request.warehouse, request.as_of, data.header.back_run)
    make_private_dir(out.parent)
    page = render_run_report(data).encode("utf-8")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others
    with os.fdopen(fd, "wb") as handle:
        handle.write(page)
    return make_private(out)
