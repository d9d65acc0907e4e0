-- Rule kind count_reduction / count_zero: events per window against the
-- pre-attachment rate. The condition is evaluated at every date where the
-- window count changes, so achieved_on is the first day of the final spell
-- in which the outcome held (and still holds at the as-of date). An outcome
-- that holds only because no events were seen is insufficient_data when a
-- monthly extract that would show them was not delivered for a month of the
-- after window (intermediate.int_rules_delivery_gaps).
WITH
targets AS (
    -- the problems this rule is judged for (one model for every rule)
    SELECT * EXCLUDE (outcome_id) FROM intermediate.int_rules_targets
    WHERE outcome_id = $outcome_id
),
has_data AS (
    -- whether any extract the rule rests on has rows at all
    SELECT len($data_extracts) = 0 OR coalesce(bool_or(has_rows), FALSE) AS ok
    FROM intermediate.int_rules_extract_rows WHERE list_contains($data_extracts, extract)
),
ev_all AS (
    SELECT t.attached_on, e.*, t.indicator
    FROM targets AS t
    JOIN intermediate.int_rules_events AS e ON e.family_id = t.family_id
    WHERE list_contains($measures, e.measure)
      AND event_in_scope($scope, t.person_ref, e.person_ref, e.is_child)
      AND e.event_date >= CAST(t.attached_on - INTERVAL ($before_months) MONTH AS DATE)
),
ev AS (
    SELECT *,
           CAST(event_date + INTERVAL ($window_months) MONTH AS DATE) AS leaves_on
    FROM ev_all
    QUALIFY row_number() OVER (
        PARTITION BY family_id, indicator, extract, record_key ORDER BY measure) = 1
),
base AS (
    SELECT t.family_id, t.indicator, t.attached_on, t.person_ref,
           count(e.record_key) FILTER (WHERE e.event_date < t.attached_on) AS before_n,
           max(e.gravity) FILTER (WHERE e.event_date < t.attached_on) AS before_gravity,
           CAST(t.attached_on + INTERVAL ($first_months) MONTH AS DATE) AS first_ok
    FROM targets AS t
    LEFT JOIN ev AS e ON e.family_id = t.family_id AND e.indicator = t.indicator
    GROUP BY ALL
),
cand AS (
    SELECT family_id, indicator, first_ok AS d FROM base WHERE first_ok <= (SELECT as_of FROM meta.run_parameters)
    UNION
    SELECT family_id, indicator, (SELECT as_of FROM meta.run_parameters) FROM base
    WHERE first_ok <= (SELECT as_of FROM meta.run_parameters)
    UNION
    SELECT e.family_id, e.indicator, e.event_date FROM ev AS e
    JOIN base AS b ON b.family_id = e.family_id AND b.indicator = e.indicator
    WHERE e.event_date > b.first_ok
    UNION
    SELECT e.family_id, e.indicator, e.leaves_on FROM ev AS e
    JOIN base AS b ON b.family_id = e.family_id AND b.indicator = e.indicator
    WHERE $windowed AND e.leaves_on > b.first_ok AND e.leaves_on <= (SELECT as_of FROM meta.run_parameters)
),
at_cand AS (
    SELECT c.family_id, c.indicator, c.d, b.before_n, b.before_gravity, b.attached_on,
           count(e.record_key) AS after_n,
           max(e.gravity) AS after_gravity
    FROM cand AS c
    JOIN base AS b ON b.family_id = c.family_id AND b.indicator = c.indicator
    LEFT JOIN ev AS e
      ON e.family_id = c.family_id AND e.indicator = c.indicator
     AND e.event_date >= b.attached_on AND e.event_date <= c.d
     AND (NOT $windowed OR c.d < e.leaves_on)
    GROUP BY ALL
),
judged AS (
    SELECT *,
        (CASE WHEN before_n = 0 THEN (CASE $zero_baseline WHEN 'require_zero' THEN after_n = 0
                                                           WHEN 'achieved' THEN TRUE
                                                           ELSE FALSE END)
              WHEN $strict THEN after_n / after_len_v
                                < before_n / $before_months * (1 - $min_reduction) - 1e-9
              ELSE after_n / after_len_v
                   <= before_n / $before_months * (1 - $min_reduction) + 1e-9
         END)
        AND ($max_after IS NULL OR after_n <= $max_after)
        AND (NOT $gravity OR after_gravity IS NULL OR after_gravity <= coalesce(before_gravity, 0))
        AS ok
    FROM (
        SELECT *,
            CASE WHEN $windowed THEN $window_months
                 ELSE greatest(date_diff('day', attached_on, d) / 30.4375, 1.0) END AS after_len_v
        FROM at_cand
    )
),
runs AS (
    SELECT *, max(CASE WHEN NOT ok THEN d END) OVER (PARTITION BY family_id, indicator) AS last_bad
    FROM judged
),
gaps AS (
    -- months of the after window for which an extract showing these events was
    -- not delivered: no events there is no evidence of no events
    SELECT b.family_id, b.indicator, count(*) AS n_gaps,
           min(g.file || ' for ' || g.month) AS first_gap
    FROM base AS b
    JOIN intermediate.int_rules_delivery_gaps AS g
      ON list_contains($extracts, g.extract)
     AND g.month >= strftime(CASE WHEN $windowed THEN greatest(b.attached_on, CAST(
             (SELECT as_of FROM meta.run_parameters) - INTERVAL ($window_months) MONTH AS DATE))
             ELSE b.attached_on END, '%Y-%m')
     AND g.month <= strftime((SELECT as_of FROM meta.run_parameters), '%Y-%m')
    GROUP BY ALL
),
res AS (
    SELECT family_id, indicator,
           bool_and(ok) FILTER (WHERE d = (SELECT as_of FROM meta.run_parameters)) AS ok_now,
           max(after_n) FILTER (WHERE d = (SELECT as_of FROM meta.run_parameters)) AS after_now,
           min(d) FILTER (WHERE ok AND (last_bad IS NULL OR d > last_bad)) AS achieved_on
    FROM runs
    GROUP BY ALL
),
aged AS (
    -- whether the problem's person is of the age the line is for
    SELECT b.*, CASE $person_age WHEN 'any' THEN TRUE
                    WHEN '18_or_over' THEN coalesce(p.is_adult, FALSE)
                    ELSE NOT coalesce(p.is_adult, TRUE) END AS person_ok
    FROM base AS b
    LEFT JOIN (SELECT person_ref, bool_or(is_adult) AS is_adult
               FROM intermediate.int_rules_people GROUP BY person_ref) AS p
      ON p.person_ref = b.person_ref
)
-- @results
SELECT
    $outcome_id AS outcome_id, b.family_id, b.indicator,
    CASE WHEN NOT b.person_ok THEN 'not_achieved'
         WHEN NOT (SELECT ok FROM has_data) THEN 'insufficient_data'
         WHEN b.first_ok > (SELECT as_of FROM meta.run_parameters) THEN 'not_yet_sustained'
         WHEN r.ok_now AND g.n_gaps > 0 THEN 'insufficient_data'
         WHEN r.ok_now THEN 'achieved'
         ELSE 'not_achieved' END AS status,
    CASE WHEN (SELECT ok FROM has_data) AND b.first_ok <= (SELECT as_of FROM meta.run_parameters) AND r.ok_now
              AND g.n_gaps IS NULL AND b.person_ok
         THEN r.achieved_on END AS achieved_on,
    CASE WHEN NOT b.person_ok THEN 'not a line for this person''s age; '
         ELSE '' END
        || 'before=' || b.before_n || ' after=' || coalesce(CAST(r.after_now AS VARCHAR), '-')
        || coalesce(' missing delivery: ' || g.first_gap
                    || CASE WHEN g.n_gaps > 1 THEN ' (and ' || (g.n_gaps - 1) || ' more)'
                            ELSE '' END, '') AS detail
FROM aged AS b
LEFT JOIN res AS r ON r.family_id = b.family_id AND r.indicator = b.indicator
LEFT JOIN gaps AS g ON g.family_id = b.family_id AND g.indicator = b.indicator
-- @evidence
SELECT
    $outcome_id AS outcome_id, e.family_id, e.indicator, e.extract, e.delivery_id, e.month,
    e.record_key, e.person_ref, e.match_method, e.match_probability,
    CASE WHEN e.event_date < e.attached_on THEN 'before: ' ELSE 'after: ' END
        || e.detail || ' on ' || strftime(e.event_date, '%Y-%m-%d') AS detail
FROM ev AS e
WHERE e.event_date < e.attached_on
   OR (NOT $windowed OR (SELECT as_of FROM meta.run_parameters) < e.leaves_on)
