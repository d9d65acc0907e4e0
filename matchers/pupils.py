"""A child known by another surname: the only pupil with that forename and DOB.

Children's surnames change and differ between services (a step-parent's or
foster carer's name, a double-barrelled name used in one system and not in
another), so a police or social care record of a child can agree with the
pupil record on forename and date of birth and on nothing else. The model
rightly does not link such a pair on its scores alone: across a county,
forename and DOB are shared by chance.

The school census is different: it lists every pupil in the county, so a
child seen by a county service is almost always on it. A child's record with
no UPN is therefore linked, as ``sole_pupil_forename_dob``, to a pupil when:

- they agree on the exact date of birth and on the forename (the same name or
  a nickname of one formal name; a full name, not an initial);
- that pupil is the only person anywhere in the data with that forename and
  date of birth, and the child is the only one that fits the pupil
  (uniqueness both ways, so twins, who share a DOB but not a forename, and
  two children of one name and birthday never link);
- the date of birth is not a "hot" default date (1 January for unknown
  birthdays), where agreement says little;
- nothing contradicts it: no recorded sex, strong identifier or case-system
  person differs, no source system lists them as two of its own people, and
  the clustering did not already refuse a link between them;
- the record without a UPN is not a cohort member's: a cohort child is never
  given a pupil's attendance on forename and DOB alone (a child out of school
  who shares both with one pupil would look as if attending: a false claim).
  The rule only brings other services' records to a pupil, which can add
  events to a family, never remove them.

The link keeps the model's probability for the pair (0 when the pair was not
scored) as its evidence, so a claim shows how weak the name evidence was.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from matchers.clustering import Edge
from matchers.comparisons import HOT_DOB_FACTOR, HOT_DOB_MIN

METHOD = "sole_pupil_forename_dob"

_SQL = f"""
WITH p AS (
    SELECT p.*, coalesce(r.root, p.profile_id) AS root
    FROM _fl_profiles p LEFT JOIN _fl_pupil_roots r USING (profile_id)
), f AS (
    SELECT dob, count(*) AS n FROM _fl_profiles WHERE dob IS NOT NULL GROUP BY dob
), hot AS (
    SELECT dob FROM f WHERE n > (SELECT greatest({HOT_DOB_MIN}, {HOT_DOB_FACTOR} * avg(n)) FROM f)
), cl AS (
    SELECT root,
        coalesce(list(DISTINCT upn)
            FILTER (WHERE upn IS NOT NULL), []::VARCHAR[]) AS upns,
        coalesce(list(DISTINCT nhs_number)
            FILTER (WHERE nhs_number IS NOT NULL), []::VARCHAR[]) AS nhs,
        coalesce(list(DISTINCT ni_number)
            FILTER (WHERE ni_number IS NOT NULL), []::VARCHAR[]) AS nis,
        coalesce(list(DISTINCT cohort_ref)
            FILTER (WHERE cohort_ref IS NOT NULL), []::VARCHAR[]) AS cohort,
        coalesce(list(DISTINCT sex)
            FILTER (WHERE sex IS NOT NULL), []::VARCHAR[]) AS sexes,
        coalesce(list(DISTINCT source_system || '|' || source_person_id)
            FILTER (WHERE source_person_id IS NOT NULL AND source_system <> 'dwp'),
            []::VARCHAR[]) AS refs,
        coalesce(list(DISTINCT source_system)
            FILTER (WHERE source_person_id IS NOT NULL AND source_system <> 'dwp'),
            []::VARCHAR[]) AS systems
    FROM p GROUP BY root
), keys AS (
    SELECT DISTINCT root, dob, unnest(first_name_groups) AS g FROM p
    WHERE dob IS NOT NULL AND length(first_name) > 1 AND dob NOT IN (SELECT dob FROM hot)
), hits AS (
    SELECT DISTINCT a.root AS ra, b.root AS rb FROM keys a JOIN keys b USING (dob, g)
    WHERE a.root <> b.root
), deg AS (
    SELECT ra, count(*) AS n FROM hits GROUP BY ra
)
SELECT h.ra AS child, h.rb AS pupil FROM hits h
JOIN deg dc ON dc.ra = h.ra AND dc.n = 1
JOIN deg dp ON dp.ra = h.rb AND dp.n = 1
JOIN cl c ON c.root = h.ra JOIN cl q ON q.root = h.rb
WHERE len(c.upns) = 0 AND len(q.upns) > 0 AND len(c.cohort) = 0
  AND NOT (len(c.nhs) > 0 AND len(q.nhs) > 0 AND NOT list_has_any(c.nhs, q.nhs))
  AND NOT (len(c.nis) > 0 AND len(q.nis) > 0 AND NOT list_has_any(c.nis, q.nis))
  AND NOT (len(c.cohort) > 0 AND len(q.cohort) > 0 AND c.cohort <> q.cohort)
  AND NOT (len(c.sexes) > 0 AND len(q.sexes) > 0 AND NOT list_has_any(c.sexes, q.sexes))
  AND NOT EXISTS (
      SELECT 1 FROM (SELECT unnest(c.systems) AS s) x
      WHERE list_contains(q.systems, x.s)
        AND NOT list_has_any(list_filter(c.refs, lambda r: starts_with(r, x.s || '|')),
                             list_filter(q.refs, lambda r: starts_with(r, x.s || '|'))))
ORDER BY child
"""


def sole_pupil_links(
    con: duckdb.DuckDBPyConnection, roots: dict[int, int], refused: list[Edge]
) -> list[Edge]:
    """Edges joining a child's cluster to the only pupil of its forename and DOB.

    ``roots`` (profile -> cluster root; a profile absent is its own cluster) is
    updated in place for the clusters joined; ``refused`` are the clustering's
    refused edges, whose clusters are never joined here.
    """
    con.register(
        "_fl_pupil_roots", pd.DataFrame({"profile_id": list(roots), "root": list(roots.values())},
                                        dtype="int64")
    )
    try:
        cand = con.execute(_SQL).fetchall()
    finally:
        con.unregister("_fl_pupil_roots")
    if not cand:
        return []
    members: dict[int, list[int]] = {}
    for p, r in roots.items():
        members.setdefault(r, []).append(p)

    def root(x: int) -> int:
        return roots.get(x, x)

    stopped = {frozenset((root(e.a), root(e.b))) for e in refused}
    # the only scored pairs the loop can ask about: both sides in a candidate's clusters
    involved = sorted({p for pair in cand for r in pair for p in members.get(int(r), [int(r)])})
    con.register("_fl_pupil_involved", pd.DataFrame({"profile_id": involved}, dtype="int64"))
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _fl_pupil_pairs AS
        SELECT profile_l, profile_r, match_probability FROM linkage.person_pairs
        WHERE profile_l IN (SELECT profile_id FROM _fl_pupil_involved)
          AND profile_r IN (SELECT profile_id FROM _fl_pupil_involved)""")
    con.unregister("_fl_pupil_involved")
    edges: list[Edge] = []
    for child, pupil in cand:
        child, pupil = int(child), int(pupil)
        if frozenset((child, pupil)) in stopped:
            continue
        a_side, b_side = members.get(child, [child]), members.get(pupil, [pupil])
        best = con.execute(
            "SELECT profile_l, profile_r, match_probability FROM _fl_pupil_pairs "
            "WHERE (list_contains(?, profile_l) AND list_contains(?, profile_r)) "
            "OR (list_contains(?, profile_l) AND list_contains(?, profile_r)) "
            "ORDER BY match_probability DESC, profile_l, profile_r LIMIT 1",
            [a_side, b_side, b_side, a_side],
        ).fetchall()
        if best:
            a, b, prob = int(best[0][0]), int(best[0][1]), float(best[0][2])
        else:
            a, b, prob = min(a_side), min(b_side), 0.0
        edges.append(Edge(a, b, prob, METHOD))
        roots.setdefault(pupil, pupil)
        for p in a_side:
            roots[p] = pupil
        members.setdefault(pupil, [pupil]).extend(a_side)
    con.execute("DROP TABLE _fl_pupil_pairs")
    return edges
