-- The records behind each outcome line's result, with their delivery and
-- how each was linked to the family member.
SELECT DISTINCT
    (SELECT plan FROM meta.run_parameters) AS plan,
    (SELECT as_of FROM meta.run_parameters) AS as_of,
    e.family_id,
    e.indicator,
    e.outcome_id,
    e.extract,
    e.delivery_id,
    e.month,
    e.record_key,
    e.person_ref,
    e.match_method,
    e.match_probability,
    e.detail
FROM intermediate.int_rules_evidence AS e
JOIN intermediate.int_rules_applicable AS a
  ON a.indicator = e.indicator AND a.outcome_id = e.outcome_id
JOIN intermediate.int_rules_problems AS p
  ON p.family_id = e.family_id AND p.indicator = e.indicator
ORDER BY e.family_id, e.indicator, e.outcome_id, e.extract, e.record_key, e.detail
