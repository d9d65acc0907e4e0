-- Continuous employment: one row per cohort adult with a verified
-- out-of-work benefit spell (the plan's out-of-work benefits and UC
-- regimes), with the best route's dates and status.
WITH claimants AS (
    SELECT DISTINCT b.family_id, b.person_ref
    FROM intermediate.int_rules_benefit_spells AS b
    JOIN intermediate.int_rules_people AS p ON p.person_ref = b.person_ref
    WHERE p.is_adult
      AND ((b.benefit <> 'UC' AND list_contains((SELECT out_of_work_benefits FROM meta.run_parameters), b.benefit))
           OR (b.benefit = 'UC' AND (b.uc_regime IS NULL
                                     OR list_contains((SELECT out_of_work_uc_regimes FROM meta.run_parameters), b.uc_regime))))
)
SELECT
    (SELECT plan FROM meta.run_parameters) AS plan,
    (SELECT as_of FROM meta.run_parameters) AS as_of,
    k.family_id,
    k.person_ref,
    c.route,
    c.off_benefit_on,
    c.qualifies_on,
    coalesce(c.status, 'not_achieved') AS status
FROM claimants AS k
LEFT JOIN intermediate.int_rules_ce AS c ON c.person_ref = k.person_ref
ORDER BY k.family_id, k.person_ref
