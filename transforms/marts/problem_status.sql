-- One row per identified indicator: interchangeable outcome lines collapsed
-- (achieved if any one is; achieved_on the earliest). Otherwise the most
-- hopeful status: not yet sustained, then not achieved, then insufficient
-- data. An indicator the plan does not know is insufficient_data.
WITH ranked AS (
    SELECT o.*,
        row_number() OVER (
            PARTITION BY o.family_id, o.indicator
            ORDER BY CASE o.status WHEN 'achieved' THEN 0 WHEN 'not_yet_sustained' THEN 1
                                   WHEN 'not_achieved' THEN 2 ELSE 3 END,
                     o.achieved_on NULLS LAST, o.outcome_id
        ) AS rn
    FROM marts.outcomes AS o
)
SELECT
    (SELECT plan FROM meta.run_parameters) AS plan,
    (SELECT as_of FROM meta.run_parameters) AS as_of,
    p.family_id,
    p.indicator,
    p.problem,
    coalesce(r.status, 'insufficient_data') AS status,
    r.achieved_on,
    r.outcome_id
FROM marts.family_problems AS p
LEFT JOIN ranked AS r ON r.family_id = p.family_id AND r.indicator = p.indicator AND r.rn = 1
ORDER BY p.family_id, p.indicator
