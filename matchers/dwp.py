"""DWP records that carry nothing to check but the reference the council sent.

A DWP data-matching return lists, under each ``match_ref`` (the person_ref the
council sent), the benefit spells and HMRC employment spells of the person
DWP found. Benefit rows carry a name and DOB and are checked against the case
system (``deterministic.DWP_VERIFIED``) or scored by the model. Employment
rows carry only the NI number: when the case system has no NI number for the
person and no benefit row shares it, nothing on the row can be checked.

Such a row is linked to the person sent, as ``dwp_match_ref_unverified``, only
when nothing contradicts it:

- the row was not linked to anyone else (its NI number is no one else's);
- the case system's NI number for the person, if any, is the row's;
- no named DWP row for the same DWP person failed the check. A DWP person is
  a reference and an NI number; DWP returns one found person's rows with one NI
  field, so a row without an NI number is blocked by a failed row without one,
  and by any failed row unless the verified rows under the reference carry no
  NI number either (then it goes with them: a stranger DWP returned under the
  reference is told apart by his NI number);
- no other NI number under the reference was verified as the person's.

Where DWP's named rows for the same reference (and the same NI number, when
the row has one) were verified as the person sent, the row belongs to that
verified DWP person: DWP matches each person sent once and returns that
person's benefit and employment spells together. Such a row is linked as
``dwp_match_ref_vouched`` with probability 0.99, whatever the return's
accuracy. (A reference whose named rows failed the check never gets here.)

Otherwise its probability is DWP's own accuracy measured on the checkable
people of the same return: the share of DWP people with a named row who
turned out to be the person sent (smoothed: (verified + 1) / (checked + 2)).
That link is made only when the accuracy is at or above the link threshold,
so a return in which DWP often picked the wrong person does not lend its
unvouched references any trust.
"""

from __future__ import annotations

import duckdb
import pandas as pd

METHOD = "dwp_match_ref_unverified"
VOUCHED_METHOD = "dwp_match_ref_vouched"
VOUCHED_PROBABILITY = 0.99

_SQL = """
WITH p AS (
    SELECT p.profile_id, p.source_system, p.match_ref, p.ni_number, p.cohort_ref,
           (p.first_name IS NOT NULL OR p.last_name IS NOT NULL) AS named,
           coalesce(c.root, p.profile_id) AS root
    FROM _fl_profiles p LEFT JOIN __ROOTS__ c USING (profile_id)
), cohort AS (
    SELECT cohort_ref AS ref, min(profile_id) AS cohort_profile, any_value(root) AS cohort_root
    FROM p WHERE cohort_ref IS NOT NULL GROUP BY cohort_ref
), clusters AS (
    SELECT root, list(DISTINCT ni_number) FILTER (WHERE ni_number IS NOT NULL) AS nis,
           bool_or(named) AS has_named, bool_or(cohort_ref IS NOT NULL) AS has_cohort
    FROM p GROUP BY root
), dwp AS (
    SELECT p.*, c.cohort_profile, c.cohort_root, p.root = c.cohort_root AS verified
    FROM p JOIN cohort c ON c.ref = p.match_ref WHERE p.source_system = 'dwp'
), persons AS (
    SELECT match_ref, ni_number, coalesce(ni_number, 'row ' || profile_id) AS person,
           bool_or(verified) AS verified
    FROM dwp WHERE named GROUP BY ALL
), cand AS (
    SELECT d.profile_id, d.root, d.cohort_profile, d.match_ref, d.ni_number,
           EXISTS (SELECT 1 FROM persons x WHERE x.match_ref = d.match_ref AND x.verified
                   AND (d.ni_number IS NULL OR x.ni_number IS NULL
                        OR x.ni_number = d.ni_number)) AS vouched
    FROM dwp d JOIN clusters cl ON cl.root = d.root
    JOIN clusters cx ON cx.root = d.cohort_root
    WHERE NOT d.named AND NOT d.verified AND NOT cl.has_named AND NOT cl.has_cohort
      AND (d.ni_number IS NULL OR coalesce(len(cx.nis), 0) = 0
           OR list_contains(cx.nis, d.ni_number))
      AND NOT EXISTS (
          SELECT 1 FROM persons x WHERE x.match_ref = d.match_ref AND NOT x.verified
             AND (x.ni_number = d.ni_number
                  OR (d.ni_number IS NULL AND (x.ni_number IS NULL OR NOT EXISTS (
                      SELECT 1 FROM persons y WHERE y.match_ref = d.match_ref
                         AND y.verified AND y.ni_number IS NULL)))))
      AND NOT EXISTS (
          SELECT 1 FROM persons x WHERE x.match_ref = d.match_ref AND x.verified
             AND d.ni_number IS NOT NULL AND x.ni_number IS NOT NULL
             AND x.ni_number <> d.ni_number)
)
SELECT (SELECT count(*) FILTER (WHERE verified) FROM persons),
       (SELECT count(*) FROM persons),
       (SELECT list({'profile': profile_id, 'root': root, 'to': cohort_profile,
                      'vouched': vouched} ORDER BY profile_id) FROM cand)
"""


def unverified_dwp_links(
    con: duckdb.DuckDBPyConnection, roots: str, threshold: float, out: str
) -> tuple[int, float]:
    """Edges (a, b, p, method) into ``out`` for DWP rows with nothing to check; returns
    their number and the estimated DWP accuracy.

    ``roots`` (a table of profile_id, root; a profile absent is its own cluster) is
    updated for the rows linked.
    """
    verified, checked, cand = con.execute(_SQL.replace("__ROOTS__", roots)).fetchall()[0]
    accuracy = (verified + 1) / (checked + 2)
    cand = cand or []
    if accuracy < threshold:
        cand = [c for c in cand if c["vouched"]]
    targets: dict[int, set[int]] = {}
    for c in cand:
        targets.setdefault(c["root"], set()).add(int(c["to"]))
    rows: list[tuple[int, int, float, str, int]] = []
    for c in cand:
        to = int(c["to"])
        if len(targets[c["root"]]) > 1:  # one DWP person sent back for two people
            continue
        if c["vouched"]:
            rows.append((int(c["profile"]), to, VOUCHED_PROBABILITY, VOUCHED_METHOD, c["root"]))
        else:
            rows.append((int(c["profile"]), to, accuracy, METHOD, c["root"]))
    edges = pd.DataFrame(rows, columns=["a", "b", "p", "method", "root"]).astype(
        {"a": "int64", "b": "int64", "p": "float64", "method": "object", "root": "int64"})
    con.register("_fl_dwp_new", edges)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT * FROM _fl_dwp_new")
    finally:
        con.unregister("_fl_dwp_new")
    # each linked row's cluster (no cohort member in it) goes to its person's cluster
    con.execute(f"""INSERT INTO {roots} SELECT DISTINCT k, k FROM (
        SELECT b AS k FROM {out} UNION SELECT root FROM {out})
        WHERE k NOT IN (SELECT profile_id FROM {roots})""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _fl_dwp_moves AS
        SELECT DISTINCT o.root AS old_root, r.root AS target
        FROM {out} AS o JOIN {roots} AS r ON r.profile_id = o.b""")
    con.execute(f"""UPDATE {roots} SET root = m.target FROM _fl_dwp_moves AS m
                    WHERE {roots}.root = m.old_root""")
    con.execute("DROP TABLE _fl_dwp_moves")
    con.execute(f"ALTER TABLE {out} DROP COLUMN root")
    return len(rows), accuracy
