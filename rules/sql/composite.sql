-- Rule kinds all_of / any_of: an outcome line made of other lines (its parts),
-- judged from the parts' results, which the graph computes before it (each rule's
-- rows are appended to the session tables rule_results / rule_evidence).
-- all_of: achieved when every part is, on the day the last one was; failing when
-- any part fails. any_of: achieved when one part is, on the day the first one was.
WITH
parts AS (
    SELECT * FROM temp.main.rule_results
    WHERE list_contains($parts, outcome_id) AND list_contains($indicators, indicator)
)
-- @results
SELECT
    $outcome_id AS outcome_id, family_id, indicator,
    CASE WHEN $all_of THEN
             CASE WHEN count(*) FILTER (WHERE status = 'achieved') = $n_parts THEN 'achieved'
                  WHEN bool_or(status = 'not_achieved') THEN 'not_achieved'
                  WHEN bool_or(status = 'not_yet_sustained') THEN 'not_yet_sustained'
                  ELSE 'insufficient_data' END
         ELSE
             CASE WHEN bool_or(status = 'achieved') THEN 'achieved'
                  WHEN bool_or(status = 'not_yet_sustained') THEN 'not_yet_sustained'
                  WHEN bool_or(status = 'not_achieved') THEN 'not_achieved'
                  ELSE 'insufficient_data' END
    END AS status,
    CASE WHEN $all_of THEN
             CASE WHEN count(*) FILTER (WHERE status = 'achieved') = $n_parts
                  THEN max(achieved_on) END
         ELSE min(achieved_on) FILTER (WHERE status = 'achieved')
    END AS achieved_on,
    string_agg(outcome_id || '=' || status, ' ' ORDER BY outcome_id) AS detail
FROM parts
GROUP BY family_id, indicator
-- @evidence
SELECT DISTINCT $outcome_id AS outcome_id, family_id, indicator, extract, delivery_id, month,
       record_key, person_ref, match_method, match_probability,
       outcome_id || ': ' || detail AS detail
FROM temp.main.rule_evidence
WHERE list_contains($parts, outcome_id) AND list_contains($indicators, indicator)
