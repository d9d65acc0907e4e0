-- Rule kind evidence_present: practitioner evidence of the given kinds for
-- this outcome, recorded on or after attachment (evidence from before
-- attachment shows the problem, not progress on it), whose outcome_code names
-- this outcome line (or one it is part of) or the indicator, or, with no usable
-- outcome_code, whose kind or named service the evidence vocabulary maps to
-- this indicator or line (vocab_targets; a row that is neither supports no
-- outcome and is listed in marts.unmatched_evidence). A row evidences the outcome from
-- its start_date, except a completed programme (and any row when completion
-- is required), which does so from its end_date, the completion: one not yet
-- completed is pending. The evidence must then stand for min_duration_weeks
-- (an engagement or plan that ended sooner does not count; a completion
-- stands) and the outcome is achieved sustain_months after that. A status
-- marked current (e.g. EET) must also not have ended by the as-of date, nor
-- been followed by a later status of the same kind that is not accepted (NEET).
WITH
targets AS (
    -- the problems this rule is judged for (one model for every rule)
    SELECT * EXCLUDE (outcome_id) FROM intermediate.int_rules_targets
    WHERE outcome_id = $outcome_id
),
ev AS (
    SELECT t.indicator, t.attached_on AS t_attached_on, e.*,
        CASE WHEN $require_completed OR e.kind = 'programme_completed' THEN e.end_date
             ELSE e.start_date END AS evidenced_on,
        CASE WHEN $require_completed OR e.kind = 'programme_completed' THEN NULL
             ELSE e.end_date END AS held_until
    FROM targets AS t
    JOIN intermediate.int_rules_practitioner_evidence AS e ON e.family_id = t.family_id
    WHERE list_contains($kinds, e.kind)
      AND evidence_in_scope($scope, t.person_ref, e.person_ref)
      AND (NOT $has_domains OR list_contains($domains, upper(trim(e.domain))))
      AND (NOT $match_code
           OR (e.code_usable AND (list_contains($codes, e.code) OR e.code = upper(t.indicator)))
           OR coalesce(list_has_any(e.vocab_targets, list_append($codes, upper(t.indicator))), FALSE))
      AND e.start_date >= t.attached_on
),
rows AS (
    SELECT *,
        CAST(evidenced_on + INTERVAL ($min_days) DAY AS DATE) AS long_enough_on,
        CAST(evidenced_on + INTERVAL ($min_days) DAY AS DATE) AS base_on
    FROM ev
),
judged AS (
    SELECT *,
        CAST(base_on + INTERVAL ($sustain_months) MONTH AS DATE) AS due_on,
        -- evidence that ended before it lasted long enough cannot show the outcome
        (held_until IS NULL OR long_enough_on <= held_until)
            AND (NOT $current OR (held_until IS NULL AND NOT superseded)) AS duration_ok
    FROM (
        -- a status (current) is superseded by a later status record of the same
        -- kind for the same person that is not one of the accepted ones (e.g. EET
        -- with no end date, then NEET): it no longer holds
        SELECT r.*, EXISTS (
            SELECT 1 FROM intermediate.int_rules_practitioner_evidence AS x
            WHERE x.family_id = r.family_id AND x.kind = r.kind
              AND x.person_ref IS NOT DISTINCT FROM r.person_ref
              AND x.start_date > r.start_date AND x.start_date <= (SELECT as_of FROM meta.run_parameters)
              AND NOT (NOT $has_domains OR list_contains($domains, upper(trim(x.domain))))) AS superseded
        FROM rows AS r
    )
),
res AS (
    SELECT family_id, indicator,
        min(due_on) FILTER (WHERE duration_ok AND base_on IS NOT NULL
                            AND due_on <= (SELECT as_of FROM meta.run_parameters)) AS achieved_on,
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
           || '..' || coalesce(strftime(e.end_date, '%Y-%m-%d'), 'ongoing')
           || coalesce(' (' || e.route || ')', '') AS detail
FROM judged AS e
