-- Practitioner evidence recorded by the as-of date for attached families.
-- Family Star Plus domains are normalised to their number (1-10) whether
-- the case system wrote the number or the name.
SELECT
    e.family_id,
    e.person_ref,
    e.evidence_id,
    e.kind,
    e.domain,
    CASE
        WHEN regexp_full_match(trim(e.domain), '[0-9]+') THEN CAST(trim(e.domain) AS INTEGER)
        WHEN lower(e.domain) LIKE '%physical%' THEN 1
        WHEN lower(e.domain) LIKE '%well%being%' THEN 2
        WHEN lower(e.domain) LIKE '%emotional%' THEN 3
        WHEN lower(e.domain) LIKE '%safe%' THEN 4
        WHEN lower(e.domain) LIKE '%social%' THEN 5
        WHEN lower(e.domain) LIKE '%education%' OR lower(e.domain) LIKE '%learning%' THEN 6
        WHEN lower(e.domain) LIKE '%boundar%' OR lower(e.domain) LIKE '%behaviour%' THEN 7
        WHEN lower(e.domain) LIKE '%routine%' THEN 8
        WHEN lower(e.domain) LIKE '%home%' OR lower(e.domain) LIKE '%money%' THEN 9
        WHEN lower(e.domain) LIKE '%work%' THEN 10
    END AS star_domain,
    e.score,
    e.outcome_code,
    e.start_date,
    CASE WHEN e.end_date <= getvariable('as_of') THEN e.end_date END AS end_date,
    f.attached_on,
    'practitioner_evidence' AS extract,
    e._delivery_id AS delivery_id,
    e._month AS month,
    e.evidence_id AS record_key,
    CASE WHEN e.person_ref IS NULL THEN 'family' ELSE 'case_system' END AS match_method,
    1.0::DOUBLE AS match_probability
FROM staging.practitioner_evidence AS e
JOIN staging.cohort_families AS f ON f.family_id = e.family_id
WHERE e.start_date <= getvariable('as_of')
  AND f.attached_on <= getvariable('as_of')
