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

from matchers.comparisons import HOT_DOB_FACTOR, HOT_DOB_MIN

METHOD = "sole_pupil_forename_dob"

_CANDIDATES_SQL = f"""
WITH p AS (
    SELECT p.*, coalesce(r.root, p.profile_id) AS root
    FROM _fl_profiles p LEFT JOIN __ROOTS__ r USING (profile_id)
), f AS (
    SELECT dob, count(*) AS n FROM _fl_profiles WHERE dob IS NOT NULL GROUP BY dob
), hot AS (
    SELECT dob FROM f WHERE n > (SELECT greatest({HOT_DOB_MIN}, {HOT_DOB_FACTOR} * avg(n)) FROM f)
), keys AS (
    SELECT DISTINCT root, dob, unnest(first_name_groups) AS g FROM p
    WHERE dob IS NOT NULL AND length(first_name) > 1 AND dob NOT IN (SELECT dob FROM hot)
), hits AS (
    SELECT DISTINCT a.root AS ra, b.root AS rb FROM keys a JOIN keys b USING (dob, g)
    WHERE a.root <> b.root
), deg AS (
    SELECT ra, count(*) AS n FROM hits GROUP BY ra
), pairs AS (
    SELECT h.ra, h.rb FROM hits h
    JOIN deg dc ON dc.ra = h.ra AND dc.n = 1
    JOIN deg dp ON dp.ra = h.rb AND dp.n = 1
), cand_roots AS (
    -- only the clusters of a pair fitting each other alone are summarised
    SELECT ra AS root FROM pairs UNION SELECT rb FROM pairs
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
    FROM p SEMI JOIN cand_roots USING (root) GROUP BY root
)
SELECT h.ra AS child, h.rb AS pupil FROM pairs h
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


# Each candidate's two sides (every profile of the child's cluster, of the pupil's), and
# the strongest scored pair between them: the link's evidence.
_EDGES_SQL = """
WITH cand AS (
    SELECT c.* FROM _fl_pupil_cand AS c WHERE NOT EXISTS (
        SELECT 1 FROM _fl_pupil_stopped AS s
        WHERE (s.x = c.child AND s.y = c.pupil) OR (s.x = c.pupil AND s.y = c.child))
), ends AS (SELECT child AS k FROM cand UNION SELECT pupil FROM cand
), sides AS (
    SELECT e.k, r.profile_id FROM ends AS e JOIN __ROOTS__ AS r ON r.root = e.k
    UNION ALL
    SELECT e.k, e.k FROM ends AS e WHERE e.k NOT IN (SELECT profile_id FROM __ROOTS__)
), pairs AS (
    SELECT c.child, pp.profile_l, pp.profile_r, pp.match_probability
    FROM cand AS c JOIN sides AS a ON a.k = c.child JOIN sides AS b ON b.k = c.pupil
    JOIN linkage.person_pairs AS pp ON pp.profile_l = a.profile_id AND pp.profile_r = b.profile_id
    UNION ALL
    SELECT c.child, pp.profile_l, pp.profile_r, pp.match_probability
    FROM cand AS c JOIN sides AS a ON a.k = c.child JOIN sides AS b ON b.k = c.pupil
    JOIN linkage.person_pairs AS pp ON pp.profile_l = b.profile_id AND pp.profile_r = a.profile_id
), best AS (
    SELECT * FROM pairs QUALIFY row_number() OVER (
        PARTITION BY child ORDER BY match_probability DESC, profile_l, profile_r) = 1
)
SELECT c.child, c.pupil,
       coalesce(b.profile_l, (SELECT min(profile_id) FROM sides WHERE k = c.child)) AS a,
       coalesce(b.profile_r, (SELECT min(profile_id) FROM sides WHERE k = c.pupil)) AS b,
       coalesce(b.match_probability, 0.0) AS p, '""" + METHOD + """' AS method
FROM cand AS c LEFT JOIN best AS b USING (child)
ORDER BY c.child
"""


def sole_pupil_links(con: duckdb.DuckDBPyConnection, roots: str, refused: str, out: str) -> int:
    """Edges (a, b, p, method) into ``out`` joining a child's cluster to the only
    pupil of its forename and DOB; returns their number.

    ``roots`` (a table of profile_id, root; a profile absent is its own cluster) is
    updated for the clusters joined; ``refused`` (profile_l, profile_r) are the
    clustering's refused edges, whose clusters are never joined here.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _fl_pupil_cand AS "
                + _CANDIDATES_SQL.replace("__ROOTS__", roots))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fl_pupil_stopped AS
        SELECT DISTINCT coalesce(ra.root, f.profile_l) AS x, coalesce(rb.root, f.profile_r) AS y
        FROM {refused} AS f LEFT JOIN {roots} AS ra ON ra.profile_id = f.profile_l
        LEFT JOIN {roots} AS rb ON rb.profile_id = f.profile_r""")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS " + _EDGES_SQL.replace("__ROOTS__", roots))
    # candidates are disjoint (each side fits only the other): one move each
    con.execute(f"""INSERT INTO {roots} SELECT DISTINCT k, k FROM (
        SELECT child AS k FROM {out} UNION SELECT pupil FROM {out})
        WHERE k NOT IN (SELECT profile_id FROM {roots})""")
    con.execute(f"""UPDATE {roots} SET root = m.pupil FROM {out} AS m
                    WHERE {roots}.root = m.child""")
    con.execute("DROP TABLE _fl_pupil_cand")
    con.execute("DROP TABLE _fl_pupil_stopped")
    n = con.execute(f"SELECT count(*) FROM {out}").fetchall()[0][0]
    con.execute(f"ALTER TABLE {out} DROP COLUMN child")
    con.execute(f"ALTER TABLE {out} DROP COLUMN pupil")
    return n
