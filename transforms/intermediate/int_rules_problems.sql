-- Problems identified for each attached family. Only indicators identified
-- by the as-of date and no later than the plan's grace period after
-- attachment count ("problems found later do not add to it").
SELECT
    p.family_id,
    p.indicator,
    CAST(substr(p.indicator, 1, 1) AS INTEGER) AS problem,
    p.person_ref,
    p.identified_on,
    f.attached_on
FROM staging.cohort_problems AS p
JOIN staging.cohort_families AS f ON f.family_id = p.family_id
WHERE f.attached_on <= (SELECT as_of FROM meta.run_parameters)
  AND p.identified_on <= (SELECT as_of FROM meta.run_parameters)
  AND p.identified_on <= f.attached_on + (SELECT identification_grace_days FROM meta.run_parameters)
