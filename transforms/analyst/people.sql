-- One row per cohort member: key, family key, role, sex and age band as at the latest run.
WITH run AS (
    SELECT coalesce(max(as_of), current_date) AS as_of FROM claims.runs
),
aged AS (
    SELECT m.*, date_sub('year', m.dob, run.as_of) AS age
    FROM staging.cohort_members AS m, run
)
SELECT
    meta.pseudonym(a.person_ref) AS person_key,
    meta.pseudonym(a.family_id) AS family_key,
    a.role,
    a.sex,
    CASE
        WHEN a.age IS NULL OR a.age < 0 THEN NULL
        WHEN a.age <= 4 THEN '0-4'
        WHEN a.age <= 10 THEN '5-10'
        WHEN a.age <= 15 THEN '11-15'
        WHEN a.age <= 17 THEN '16-17'
        WHEN a.age <= 24 THEN '18-24'
        WHEN a.age <= 34 THEN '25-34'
        WHEN a.age <= 49 THEN '35-49'
        ELSE '50+'
    END AS age_band,
    (SELECT count(*) FROM linkage.record_links AS l
      WHERE l.person_ref = a.person_ref AND l.extract <> 'cohort_members') AS linked_records
FROM aged AS a
