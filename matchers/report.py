"""A self-contained HTML linkage report for the analyst.

Everything is inline (hand-drawn SVG, no scripts): the report must open on a
council laptop without internet, and Splink's own charts load Vega from a CDN.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb

from famlink.run_report import bar_chart_svg, header_from_warehouse, html_page, html_table

REVIEW_ROWS_SHOWN = 25


def weight_histogram_svg(weights: list[float], threshold_weight: float | None = None) -> str:
    """Histogram of match weights (bins of 1 weight unit), counts on a labelled log scale."""
    if not weights:
        return "<p>No scored pairs.</p>"
    lo, hi = math.floor(min(weights)), math.ceil(max(weights)) + 1
    counts = [0] * (hi - lo)
    for w in weights:
        counts[min(int(math.floor(w)) - lo, len(counts) - 1)] += 1
    marker = None
    if threshold_weight is not None and lo <= threshold_weight <= hi:
        marker = (threshold_weight - lo, "link threshold")
    return bar_chart_svg([str(lo + i) for i in range(len(counts))],
                         [("pairs", "#4a7ab5", counts)], log=True,
                         y_label="scored pairs (log scale)", x_label="match weight (bin from)",
                         marker=marker)


def write_linkage_report(con: duckdb.DuckDBPyConnection, out_html: Path, threshold: float = 0.9
                         ) -> Path:
    """Write the report from ``linkage.*`` tables, under the latest run's header.

    The clerical-review section shows the pairs nearest the threshold, cut to fit
    the page (long cells wrap), and says how many more ``famlink review`` lists.
    """
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
           ORDER BY abs(match_probability - ?) LIMIT ?""", [threshold, REVIEW_ROWS_SHOWN]
    ).fetchall()
    (review_total,) = con.execute("SELECT count(*) FROM linkage.clerical_review").fetchone()
    households = con.execute(
        "SELECT match_method, count(*) FROM linkage.household_links GROUP BY 1 ORDER BY 1"
    ).fetchall()
    shown = (f"{len(review)} of {review_total:,} pairs, those nearest the threshold"
             if review_total > len(review) else f"All {review_total:,} pairs")
    body = f"""<h2>Match weight distribution of scored pairs</h2>{weight_histogram_svg(weights, tw)}
<p>Pairs at or above match probability {threshold} (weight {tw:.2f}) are linked.</p>
<h2>Links per source</h2>{html_table(per_source, ["extract", "records", "linked to cohort",
    "persons", "probabilistic", "deterministic"])}
<h2>Link methods</h2>{html_table(methods, ["method", "records"])}
<h2>Cluster sizes (number of extracts a person appears in)</h2>
{html_table(sizes, ["extracts", "persons"])}
<h2>Household links (police incidents to cohort families)</h2>
{html_table(households, ["method", "incidents"])}
<h2>Clerical review: borderline pairs</h2>
<p data-figure="clerical-review" data-value="{review_total}">{shown}
(linkage.clerical_review holds them all).</p>
{html_table(review, ["record l", "record r", "probability", "weight", "reason", "first l",
                     "first r", "last l", "last r", "dob l", "dob r", "postcode l",
                     "postcode r"], css="wide",
                     widths=[13, 13, 6, 5, 9, 6, 6, 7, 7, 8, 8, 6, 6])}"""
    doc = html_page("Person and household linkage", header_from_warehouse(con), body)
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(doc, encoding="utf-8")
    return out_html
