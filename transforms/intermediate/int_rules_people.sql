-- Cohort members of families attached by the as-of date, with adult/child
-- status at the as-of date (18th birthday; role when the DOB is missing).
SELECT
    m.person_ref,
    m.family_id,
    m.role,
    m.dob,
    f.attached_on,
    f.case_closed_on,
    CASE
        WHEN m.dob IS NOT NULL THEN CAST(m.dob + INTERVAL 18 YEAR AS DATE) <= (SELECT as_of FROM meta.run_parameters)
        ELSE m.role <> 'child'
    END AS is_adult
FROM staging.cohort_members AS m
JOIN staging.cohort_families AS f ON f.family_id = m.family_id
WHERE f.attached_on <= (SELECT as_of FROM meta.run_parameters)
