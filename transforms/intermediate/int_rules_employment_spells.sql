-- HMRC employment spells from DWP, verified like the benefit spells.
SELECT
    lr.family_id,
    lr.person_ref,
    w.employer_ref,
    w.start_date,
    CASE WHEN w.end_date <= (SELECT as_of FROM meta.run_parameters) THEN w.end_date END AS end_date,
    w.monthly_earnings,
    'dwp_employment' AS extract,
    w._delivery_id AS delivery_id,
    w._month AS month,
    w.match_ref || '|' || w.employer_ref || '|' || strftime(w.start_date, '%Y-%m-%d') AS record_key,
    lr.match_method,
    lr.match_probability
FROM staging.dwp_employment AS w
JOIN intermediate.int_rules_linked_records AS lr
  ON lr.extract = 'dwp_employment'
 AND lr.record_key = w.match_ref || '|' || w.employer_ref || '|' || strftime(w.start_date, '%Y-%m-%d')
 AND lr.person_ref = w.match_ref
WHERE w.start_date <= (SELECT as_of FROM meta.run_parameters)
