-- Rule kind family_star_threshold: at each Family Star Plus reading date
-- after attachment, the latest score per domain; the outcome holds when
-- enough domains score at or above the threshold, and is achieved once it
-- has held (with no failing reading since) for sustain_months.
WITH
targets AS (
    -- the problems this rule is judged for (one model for every rule)
    SELECT * EXCLUDE (outcome_id) FROM intermediate.int_rules_targets
    WHERE outcome_id = $outcome_id
),
readings AS (
    SELECT t.indicator, t.attached_on AS t_attached_on, e.*
    FROM targets AS t
    JOIN intermediate.int_rules_practitioner_evidence AS e ON e.family_id = t.family_id
    WHERE e.kind = 'family_star' AND e.score IS NOT NULL
      AND list_contains($star_domains, e.star_domain)
      AND evidence_in_scope($scope, t.person_ref, e.person_ref)
),
dates AS (
    SELECT DISTINCT family_id, indicator, start_date AS d
    FROM readings WHERE start_date >= t_attached_on
),
state AS (
    SELECT d.family_id, d.indicator, d.d, r.star_domain,
           arg_max(r.score, r.start_date) AS score
    FROM dates AS d
    JOIN readings AS r ON r.family_id = d.family_id AND r.indicator = d.indicator
     AND r.start_date <= d.d
    GROUP BY ALL
),
judged AS (
    SELECT family_id, indicator, d,
           count(*) FILTER (WHERE score >= $min_score) >= $min_domains AS ok
    FROM state
    GROUP BY ALL
),
runs AS (
    SELECT *,
        max(CASE WHEN NOT ok THEN d END) OVER (PARTITION BY family_id, indicator) AS last_bad,
        max(d) OVER (PARTITION BY family_id, indicator) AS last_d
    FROM judged
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
    $outcome_id AS outcome_id, t.family_id, t.indicator,
    CASE WHEN r.ok_now AND CAST(r.since + INTERVAL ($sustain_months) MONTH AS DATE)
                           <= (SELECT as_of FROM meta.run_parameters) THEN 'achieved'
         WHEN r.ok_now THEN 'not_yet_sustained'
         WHEN r.family_id IS NULL AND CAST(t.attached_on + INTERVAL ($sustain_months) MONTH AS DATE)
                           > (SELECT as_of FROM meta.run_parameters) THEN 'not_yet_sustained'
         ELSE 'not_achieved' END AS status,
    CASE WHEN r.ok_now AND CAST(r.since + INTERVAL ($sustain_months) MONTH AS DATE)
                           <= (SELECT as_of FROM meta.run_parameters)
         THEN CAST(r.since + INTERVAL ($sustain_months) MONTH AS DATE) END AS achieved_on,
    'star held since ' || coalesce(strftime(r.since, '%Y-%m-%d'), '-') AS detail
FROM targets AS t
LEFT JOIN res AS r ON r.family_id = t.family_id AND r.indicator = t.indicator
-- @evidence
SELECT $outcome_id AS outcome_id, e.family_id, e.indicator, e.extract, e.delivery_id, e.month,
       e.record_key, e.person_ref, e.match_method, e.match_probability,
       'Family Star domain ' || e.star_domain || ' score ' || e.score || ' on '
           || strftime(e.start_date, '%Y-%m-%d') AS detail
FROM readings AS e
