-- One row per cohort family: its key, attachment and closure months, and its size.
SELECT
    meta.pseudonym(f.family_id) AS family_key,
    strftime(f.attached_on, '%Y-%m') AS attached_month,
    strftime(f.case_closed_on, '%Y-%m') AS case_closed_month,
    (SELECT count(*) FROM staging.cohort_members m
      WHERE m.family_id = f.family_id) AS members,
    (SELECT count(*) FROM staging.cohort_members m
      WHERE m.family_id = f.family_id AND m.role = 'child') AS children,
    (SELECT count(DISTINCT p.indicator) FROM staging.cohort_problems p
      WHERE p.family_id = f.family_id) AS indicators
FROM staging.cohort_families AS f
