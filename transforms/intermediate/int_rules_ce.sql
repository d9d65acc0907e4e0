-- Continuous employment per cohort adult: the best of the plan's routes
-- (achieved first, earliest; then still running; then failed), over the
-- route rows the engine built from the plan in int_rules_ce_routes.
SELECT route, family_id, person_ref, off_benefit_on, qualifies_on, trigger_key, status
FROM intermediate.int_rules_ce_routes
QUALIFY row_number() OVER (
    PARTITION BY person_ref
    ORDER BY CASE status WHEN 'achieved' THEN 0 WHEN 'not_yet_sustained' THEN 1 ELSE 2 END,
             qualifies_on NULLS LAST, off_benefit_on DESC, route
) = 1
