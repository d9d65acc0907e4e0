-- Exclusions per linked pupil, placed in the term their start date falls in
-- (Sep-Dec autumn, Jan-Apr spring, May-Aug summer).
SELECT
    lr.family_id,
    lr.person_ref,
    x.category,
    x.start_date,
    x.sessions,
    CASE WHEN month(x.start_date) >= 9 THEN year(x.start_date) * 3
         WHEN month(x.start_date) <= 4 THEN (year(x.start_date) - 1) * 3 + 1
         ELSE (year(x.start_date) - 1) * 3 + 2 END AS term_idx,
    'school_exclusions' AS extract,
    x._delivery_id AS delivery_id,
    x._month AS month,
    x.upn || '|' || strftime(x.start_date, '%Y-%m-%d') || '|' || x.category AS record_key,
    lr.match_method,
    lr.match_probability
FROM staging.school_exclusions AS x
JOIN intermediate.int_rules_linked_records AS lr
  ON lr.extract = 'school_exclusions'
 AND lr.record_key = x.upn || '|' || strftime(x.start_date, '%Y-%m-%d') || '|' || x.category
WHERE x.start_date <= (SELECT as_of FROM meta.run_parameters)
