-- Each identified problem's outcome status under the plan at the latest run.
SELECT
    o.plan,
    o.as_of,
    meta.pseudonym(o.family_id) AS family_key,
    meta.pseudonym(o.person_ref) AS person_key,
    o.indicator,
    o.problem,
    o.outcome_id,
    o.status,
    strftime(o.achieved_on, '%Y-%m') AS achieved_month,
    o.rule
FROM marts.outcomes AS o
