-- Source records linked to a cohort member (one person per record, the most
-- probable link). DWP records count only when linkage confirmed that the
-- record belongs to the person the council sent (person_ref = match_ref):
-- DWP returns records of other people under a match_ref.
SELECT
    l.extract,
    l.record_key,
    l.person_ref,
    p.family_id,
    p.is_adult,
    p.dob,
    l.match_method,
    l.match_probability
FROM linkage.record_links AS l
JOIN intermediate.int_rules_people AS p ON p.person_ref = l.person_ref
WHERE l.person_ref IS NOT NULL
  AND l.extract <> 'cohort_members'
QUALIFY row_number() OVER (
    PARTITION BY l.extract, l.record_key
    ORDER BY l.match_probability DESC NULLS LAST, l.person_ref
) = 1
