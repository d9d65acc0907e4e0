-- One row per identified indicator per applicable outcome line of the plan.
SELECT
    (SELECT plan FROM meta.run_parameters) AS plan,
    (SELECT as_of FROM meta.run_parameters) AS as_of,
    p.family_id,
    p.indicator,
    p.problem,
    p.person_ref,
    r.outcome_id,
    r.status,
    r.achieved_on,
    c.rule_text AS rule
FROM intermediate.int_rules_problems AS p
JOIN intermediate.int_rules_results AS r
  ON r.family_id = p.family_id AND r.indicator = p.indicator
JOIN intermediate.int_rules_applicable AS a
  ON a.indicator = r.indicator AND a.outcome_id = r.outcome_id
JOIN intermediate.int_rules_catalog AS c ON c.outcome_id = r.outcome_id
ORDER BY p.family_id, p.indicator, r.outcome_id
