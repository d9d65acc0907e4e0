"""A self-contained HTML linkage report for the analyst.

Everything is inline (hand-drawn SVG, no scripts): the report must open on a
council laptop without internet, and Splink's own charts load Vega from a CDN.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import duckdb


def _table(rows: list[tuple], headers: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def weight_histogram_svg(weights: list[float], threshold_weight: float | None = None) -> str:
    """Histogram of match weights as an inline SVG (bins of 1 weight unit)."""
    if not weights:
        return "<p>No scored pairs.</p>"
    lo, hi = math.floor(min(weights)), math.ceil(max(weights)) + 1
    counts = [0] * (hi - lo)
    for w in weights:
        counts[min(int(math.floor(w)) - lo, len(counts) - 1)] += 1
    width, height, pad = 720, 260, 40
    bw = (width - 2 * pad) / len(counts)
    top = max(counts)
    bars = []
    for i, c in enumerate(counts):
        h = (height - 2 * pad) * math.log1p(c) / math.log1p(top)
        x, y = pad + i * bw, height - pad - h
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bw - 1, 1):.1f}" height="{h:.1f}" '
            f'fill="#4a7ab5"><title>weight {lo + i} to {lo + i + 1}: {c} pairs</title></rect>'
        )
    ticks = "".join(
        f'<text x="{pad + i * bw:.1f}" y="{height - pad + 14}" font-size="10">{lo + i}</text>'
        for i in range(0, len(counts), max(1, len(counts) // 12))
    )
    line = ""
    if threshold_weight is not None and lo <= threshold_weight <= hi:
        x = pad + (threshold_weight - lo) * bw
        line = (f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad - 10}" y2="{height - pad}" '
                f'stroke="#c0392b" stroke-dasharray="4"/><text x="{x + 3:.1f}" y="{pad - 12}" '
                f'font-size="11" fill="#c0392b">link threshold</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'{"".join(bars)}{ticks}{line}<text x="{width / 2 - 60}" y="{height - 5}" font-size="12">'
        f"match weight (log scale counts)</text></svg>"
    )


def write_linkage_report(con: duckdb.DuckDBPyConnection, out_html: Path, threshold: float = 0.9
                         ) -> Path:
    """Write the report from ``linkage.*`` tables."""
    weights = [r[0] for r in con.execute(
        "SELECT match_weight FROM linkage.person_pairs WHERE match_weight IS NOT NULL").fetchall()]
    tw = math.log2(threshold / (1 - threshold))
    per_source = con.execute(
        """SELECT extract, count(*) AS records,
                  count(*) FILTER (WHERE person_ref IS NOT NULL) AS linked_to_cohort,
                  count(DISTINCT person_id) AS persons,
                  count(*) FILTER (WHERE match_method = 'probabilistic') AS probabilistic,
                  count(*) FILTER (WHERE match_method NOT IN ('probabilistic', 'cohort'))
                      AS deterministic
           FROM linkage.record_links GROUP BY extract ORDER BY extract"""
    ).fetchall()
    methods = con.execute(
        "SELECT coalesce(match_method, '(unlinked)'), count(*) FROM linkage.record_links "
        "GROUP BY 1 ORDER BY 2 DESC").fetchall()
    sizes = con.execute(
        """SELECT n_sources, count(*) FROM (
             SELECT person_id, count(DISTINCT extract) AS n_sources FROM linkage.record_links
             GROUP BY person_id) GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    review = con.execute(
        """SELECT record_id_l, record_id_r, round(match_probability, 4), round(match_weight, 2),
                  reason, first_name_l, first_name_r, last_name_l, last_name_r, dob_l, dob_r,
                  postcode_l, postcode_r FROM linkage.clerical_review
           ORDER BY match_probability DESC LIMIT 500"""
    ).fetchall()
    households = con.execute(
        "SELECT match_method, count(*) FROM linkage.household_links GROUP BY 1 ORDER BY 1"
    ).fetchall()
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:"
             "collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
             "th{background:#eef}")
    doc = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Linkage report</title>
<style>{style}</style></head><body>
<h1>Person and household linkage</h1>
<h2>Match weight distribution of scored pairs</h2>{weight_histogram_svg(weights, tw)}
<p>Pairs at or above match probability {threshold} (weight {tw:.2f}) are linked.</p>
<h2>Links per source</h2>{_table(per_source, ["extract", "records", "linked to cohort",
    "persons", "probabilistic", "deterministic"])}
<h2>Link methods</h2>{_table(methods, ["method", "records"])}
<h2>Cluster sizes (number of extracts a person appears in)</h2>
{_table(sizes, ["extracts", "persons"])}
<h2>Household links (police incidents to cohort families)</h2>
{_table(households, ["method", "incidents"])}
<h2>Clerical review: borderline pairs</h2>
{_table(review, ["record l", "record r", "probability", "weight", "reason", "first l", "first r",
                 "last l", "last r", "dob l", "dob r", "postcode l", "postcode r"])}
</body></html>"""
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(doc, encoding="utf-8")
    return out_html
