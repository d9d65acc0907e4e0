-- The DWP records behind each adult's continuous-employment result: the
-- benefit spell they moved off and the employment or UC spells that
-- followed, up to the qualifying date (or the as-of date).
SELECT c.person_ref, b.extract, b.delivery_id, b.month, b.record_key, b.match_method,
       b.match_probability,
       c.route || ': ' || b.benefit || coalesce(' ' || b.uc_regime, '') || ' '
           || strftime(b.start_date, '%Y-%m-%d') || '..'
           || coalesce(strftime(b.end_date, '%Y-%m-%d'), 'open') AS detail
FROM intermediate.int_rules_ce AS c
JOIN intermediate.int_rules_benefit_spells AS b ON b.person_ref = c.person_ref
WHERE b.record_key = c.trigger_key
   OR (c.off_benefit_on IS NOT NULL
       AND b.start_date <= coalesce(c.qualifies_on, (SELECT as_of FROM meta.run_parameters))
       AND coalesce(b.end_date, (SELECT as_of FROM meta.run_parameters)) >= c.off_benefit_on - 1)
UNION ALL
SELECT c.person_ref, w.extract, w.delivery_id, w.month, w.record_key, w.match_method,
       w.match_probability,
       c.route || ': employment ' || w.employer_ref || ' '
           || strftime(w.start_date, '%Y-%m-%d') || '..'
           || coalesce(strftime(w.end_date, '%Y-%m-%d'), 'open') AS detail
FROM intermediate.int_rules_ce AS c
JOIN intermediate.int_rules_employment_spells AS w ON w.person_ref = c.person_ref
WHERE c.off_benefit_on IS NOT NULL
  AND w.start_date <= coalesce(c.qualifies_on, (SELECT as_of FROM meta.run_parameters))
  AND coalesce(w.end_date, (SELECT as_of FROM meta.run_parameters)) >= c.off_benefit_on
