-- DWP benefit spells of cohort members, only where linkage verified that the
-- returned record is the person sent (record_links.person_ref = match_ref).
-- A spell ending after the as-of date is open at it.
SELECT
    lr.family_id,
    lr.person_ref,
    lr.is_adult,
    b.benefit,
    b.uc_regime,
    b.start_date,
    CASE WHEN b.end_date <= (SELECT as_of FROM meta.run_parameters) THEN b.end_date END AS end_date,
    'dwp_benefits' AS extract,
    b._delivery_id AS delivery_id,
    b._month AS month,
    b.match_ref || '|' || b.benefit || '|' || strftime(b.start_date, '%Y-%m-%d') AS record_key,
    lr.match_method,
    lr.match_probability
FROM staging.dwp_benefits AS b
JOIN intermediate.int_rules_linked_records AS lr
  ON lr.extract = 'dwp_benefits'
 AND lr.record_key = b.match_ref || '|' || b.benefit || '|' || strftime(b.start_date, '%Y-%m-%d')
 AND lr.person_ref = b.match_ref
WHERE b.start_date <= (SELECT as_of FROM meta.run_parameters)
