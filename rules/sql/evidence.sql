-- Rule kind evidence_present: practitioner evidence of the given kinds for
-- this outcome (its outcome_code is the outcome line or the indicator, or
-- empty), lasting at least min_duration_weeks from attachment (engagement),
-- completed when required, and held for sustain_months afterwards.
WITH
$targets,
ev AS (
    SELECT t.indicator, t.attached_on AS t_attached_on, e.*,
        greatest(e.start_date, t.attached_on) AS eff_start
    FROM targets AS t
    JOIN intermediate.int_rules_practitioner_evidence AS e ON e.family_id = t.family_id
    WHERE e.kind IN ($kinds)
      AND ($person_scope)
      AND ($domain_filter)
      AND (NOT $match_code OR e.outcome_code IS NULL
           OR upper(trim(e.outcome_code)) IN ($codes, upper(t.indicator)))
      AND coalesce(e.end_date, getvariable('as_of')) >= t.attached_on
),
rows AS (
    SELECT *,
        CAST(eff_start + INTERVAL ($min_days) DAY AS DATE) AS long_enough_on,
        CASE WHEN $require_completed THEN end_date
             ELSE CAST(eff_start + INTERVAL ($min_days) DAY AS DATE) END AS base_on
    FROM ev
),
judged AS (
    SELECT *,
        CAST(base_on + INTERVAL ($sustain_months) MONTH AS DATE) AS due_on,
        -- evidence that ended before it lasted long enough cannot show the outcome
        (end_date IS NULL OR long_enough_on <= end_date) AS duration_ok
    FROM rows
),
res AS (
    SELECT family_id, indicator,
        min(due_on) FILTER (WHERE duration_ok AND base_on IS NOT NULL
                            AND due_on <= getvariable('as_of')) AS achieved_on,
        count(*) FILTER (WHERE duration_ok) AS n_pending,
        count(*) AS n
    FROM judged
    GROUP BY ALL
)
-- @results
SELECT
    $outcome_id AS outcome_id, t.family_id, t.indicator,
    CASE WHEN r.achieved_on IS NOT NULL THEN 'achieved'
         WHEN r.n_pending > 0 THEN 'not_yet_sustained'
         ELSE 'not_achieved' END AS status,
    r.achieved_on,
    'evidence rows=' || coalesce(r.n, 0) AS detail
FROM targets AS t
LEFT JOIN res AS r ON r.family_id = t.family_id AND r.indicator = t.indicator
-- @evidence
SELECT $outcome_id AS outcome_id, e.family_id, e.indicator, e.extract, e.delivery_id, e.month,
       e.record_key, e.person_ref, e.match_method, e.match_probability,
       e.kind || coalesce(' ' || e.domain, '') || ' ' || strftime(e.start_date, '%Y-%m-%d')
           || '..' || coalesce(strftime(e.end_date, '%Y-%m-%d'), 'ongoing') AS detail
FROM judged AS e
