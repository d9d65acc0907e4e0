-- Rule kind continuous_employment: the continuous-employment result of the
-- problem's person (or of any adult in the family), from intermediate.int_rules_ce.
WITH
targets AS (
    -- the problems this rule is judged for (one model for every rule)
    SELECT * EXCLUDE (outcome_id) FROM intermediate.int_rules_targets
    WHERE outcome_id = $outcome_id
),
ce AS (
    SELECT t.indicator, c.*
    FROM targets AS t
    JOIN intermediate.int_rules_ce AS c ON c.family_id = t.family_id
    WHERE (NOT $per_person OR t.person_ref IS NULL OR c.person_ref = t.person_ref)
),
res AS (
    SELECT family_id, indicator,
        min(qualifies_on) FILTER (WHERE status = 'achieved') AS achieved_on,
        count(*) FILTER (WHERE status = 'not_yet_sustained') AS n_pending,
        count(*) AS n,
        string_agg(person_ref || ':' || coalesce(route, '-') || ':' || status, ', '
                   ORDER BY person_ref) AS routes
    FROM ce
    GROUP BY ALL
)
-- @results
SELECT
    $outcome_id AS outcome_id, t.family_id, t.indicator,
    CASE WHEN r.achieved_on IS NOT NULL THEN 'achieved'
         WHEN r.n_pending > 0 THEN 'not_yet_sustained'
         WHEN r.n > 0 THEN 'not_achieved'
         ELSE 'insufficient_data' END AS status,
    r.achieved_on,
    coalesce(r.routes, 'no verified DWP benefit spell') AS detail
FROM targets AS t
LEFT JOIN res AS r ON r.family_id = t.family_id AND r.indicator = t.indicator
-- @evidence
SELECT $outcome_id AS outcome_id, c.family_id, c.indicator, v.extract, v.delivery_id, v.month,
       v.record_key, v.person_ref, v.match_method, v.match_probability, v.detail
FROM ce AS c
JOIN intermediate.int_rules_ce_evidence AS v ON v.person_ref = c.person_ref
