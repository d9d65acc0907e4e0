-- Rule kind score_reduction: the latest assessed score after attachment is
-- below the latest score before it (e.g. the YOT drug/alcohol risk score),
-- and has stayed below at every reading since, for sustain_months.
WITH
targets AS (
    -- the problems this rule is judged for (one model for every rule)
    SELECT * EXCLUDE (outcome_id) FROM intermediate.int_rules_targets
    WHERE outcome_id = $outcome_id
),
ev AS (
    SELECT t.indicator, t.attached_on, e.*
    FROM targets AS t
    JOIN intermediate.int_rules_events AS e ON e.family_id = t.family_id
    WHERE e.measure = $measure AND e.score IS NOT NULL AND event_in_scope($scope, t.person_ref, e.person_ref, e.is_child)
),
base AS (
    SELECT t.family_id, t.indicator, t.attached_on,
        arg_max(e.score, e.event_date) FILTER (WHERE e.event_date < t.attached_on) AS before_score
    FROM targets AS t
    LEFT JOIN ev AS e ON e.family_id = t.family_id AND e.indicator = t.indicator
    GROUP BY ALL
),
after AS (
    SELECT e.family_id, e.indicator, e.event_date AS d, max(e.score) < b.before_score AS ok
    FROM ev AS e
    JOIN base AS b ON b.family_id = e.family_id AND b.indicator = e.indicator
    WHERE e.event_date >= b.attached_on
    GROUP BY e.family_id, e.indicator, e.event_date, b.before_score
),
runs AS (
    SELECT *,
        max(CASE WHEN NOT ok THEN d END) OVER (PARTITION BY family_id, indicator) AS last_bad,
        max(d) OVER (PARTITION BY family_id, indicator) AS last_d
    FROM after
),
res AS (
    SELECT family_id, indicator,
        bool_and(ok) FILTER (WHERE d = last_d) AS ok_now,
        min(d) FILTER (WHERE ok AND (last_bad IS NULL OR d > last_bad)) AS since
    FROM runs
    GROUP BY ALL
)
-- @results
SELECT
    $outcome_id AS outcome_id, b.family_id, b.indicator,
    CASE WHEN b.before_score IS NULL THEN 'insufficient_data'
         WHEN r.family_id IS NULL THEN 'not_yet_sustained'
         WHEN r.ok_now AND CAST(r.since + INTERVAL ($sustain_months) MONTH AS DATE)
                           <= (SELECT as_of FROM meta.run_parameters) THEN 'achieved'
         WHEN r.ok_now THEN 'not_yet_sustained'
         ELSE 'not_achieved' END AS status,
    CASE WHEN b.before_score IS NOT NULL AND r.ok_now
          AND CAST(r.since + INTERVAL ($sustain_months) MONTH AS DATE) <= (SELECT as_of FROM meta.run_parameters)
         THEN CAST(r.since + INTERVAL ($sustain_months) MONTH AS DATE) END AS achieved_on,
    'baseline score ' || coalesce(CAST(b.before_score AS VARCHAR), '-') AS detail
FROM base AS b
LEFT JOIN res AS r ON r.family_id = b.family_id AND r.indicator = b.indicator
-- @evidence
SELECT $outcome_id AS outcome_id, e.family_id, e.indicator, e.extract, e.delivery_id, e.month,
       e.record_key, e.person_ref, e.match_method, e.match_probability,
       e.detail || ' on ' || strftime(e.event_date, '%Y-%m-%d') AS detail
FROM ev AS e
