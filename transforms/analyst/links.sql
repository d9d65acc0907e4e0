-- Source records linked to cohort people (person links) and police incidents to families.
SELECT
    'person' AS link_kind,
    l.extract,
    meta.pseudonym(l.record_key) AS record_key,
    meta.pseudonym(l.person_ref) AS person_key,
    meta.pseudonym(m.family_id) AS family_key,
    l.match_method,
    l.match_probability
FROM linkage.record_links AS l
LEFT JOIN staging.cohort_members AS m ON m.person_ref = l.person_ref
UNION ALL
SELECT
    'household' AS link_kind,
    'police_incidents' AS extract,
    meta.pseudonym(h.incident_ref) AS record_key,
    NULL AS person_key,
    meta.pseudonym(h.family_id) AS family_key,
    h.match_method,
    NULL AS match_probability
FROM linkage.household_links AS h
