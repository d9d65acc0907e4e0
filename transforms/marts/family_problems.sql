-- The problems identified at attachment that a family's claim must cover.
SELECT family_id, indicator, problem, person_ref, identified_on, attached_on
FROM intermediate.int_rules_problems
ORDER BY family_id, indicator, person_ref
