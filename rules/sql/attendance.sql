-- Rule kind attendance_threshold: attendance (and exclusions) over windows of
-- consecutive terms that start after attachment, ending at the latest term
-- present in the arrived deliveries. Every child in scope must pass, and the
-- identified child must be among them. A child is judged on the terms of the
-- window in which they are of school age: from the school year in which they
-- start reception (the September after their fourth birthday) to the one in
-- which they finish year 11 ("school age children"); without a DOB, on every
-- term of the window.
WITH
targets AS (
    -- the problems this rule is judged for (one model for every rule)
    SELECT * EXCLUDE (outcome_id) FROM intermediate.int_rules_targets
    WHERE outcome_id = $outcome_id
),
people AS (
    SELECT t.family_id, t.indicator, t.attached_on, p.person_ref,
        CASE WHEN p.dob IS NULL THEN NULL
             ELSE (year(p.dob) + CASE WHEN month(p.dob) <= 8 THEN 4 ELSE 5 END) * 3
        END AS first_school_term,
        CASE WHEN p.dob IS NULL THEN NULL
             ELSE (year(p.dob) + CASE WHEN month(p.dob) <= 8 THEN 15 ELSE 16 END) * 3 + 2
        END AS last_school_term
    FROM targets AS t
    JOIN intermediate.int_rules_people AS p ON p.family_id = t.family_id
    WHERE person_in_scope($scope, t.person_ref, p.person_ref, p.is_adult)
),
span AS (
    SELECT t.family_id, t.indicator, t.attached_on,
        (CASE WHEN month(t.attached_on) >= 9 THEN year(t.attached_on) * 3
              WHEN month(t.attached_on) <= 4 THEN (year(t.attached_on) - 1) * 3 + 1
              ELSE (year(t.attached_on) - 1) * 3 + 2 END)
        + CASE WHEN $count_attachment_term
                 OR (month(t.attached_on), day(t.attached_on)) IN ((9, 1), (1, 1), (5, 1))
               THEN 0 ELSE 1 END AS first_term,
        (SELECT max(latest_term) FROM intermediate.int_rules_attendance_terms) AS latest_term
    FROM targets AS t
),
att AS (
    SELECT pp.family_id, pp.indicator, pp.person_ref, pp.first_school_term,
           pp.last_school_term,
           a.term_idx, a.term_end,
           a.possible_sessions AS possible, CASE $basis WHEN 'unauthorised' THEN a.unauthorised_absence
               ELSE (a.authorised_absence + a.unauthorised_absence) END AS absence,
           a.extract, a.delivery_id, a.month, a.record_key, a.match_method, a.match_probability
    FROM people AS pp
    JOIN intermediate.int_rules_attendance_terms AS a ON a.person_ref = pp.person_ref
),
excl AS (
    SELECT pp.family_id, pp.indicator, pp.person_ref, pp.attached_on, x.*
        EXCLUDE (family_id, person_ref)
    FROM people AS pp
    JOIN intermediate.int_rules_exclusions AS x ON x.person_ref = pp.person_ref
),
baseline AS (
    SELECT family_id, indicator, person_ref, count(*) AS base_susp
    FROM excl
    WHERE category = 'SUSPENSION'
      AND start_date < attached_on
      AND start_date >= CAST(attached_on - INTERVAL 12 MONTH AS DATE)
    GROUP BY ALL
),
win AS (
    SELECT family_id, indicator, first_term, latest_term,
           unnest(range(first_term + $terms - 1, latest_term + 1)) AS t
    FROM span
    WHERE latest_term IS NOT NULL AND first_term + $terms - 1 <= latest_term
),
child_win AS (
    SELECT w.family_id, w.indicator, w.t, a.person_ref,
           -- the terms of the window in which the child was of school age
           least(w.t, coalesce(a.last_school_term, w.t))
               - greatest(w.t - $terms + 1, coalesce(a.first_school_term, w.t - $terms + 1))
               + 1 AS school_terms,
           count(DISTINCT a.term_idx) AS n_terms,
           sum(a.possible) AS possible, sum(a.absence) AS absence
    FROM win AS w
    JOIN att AS a ON a.family_id = w.family_id AND a.indicator = w.indicator
     AND a.term_idx BETWEEN w.t - $terms + 1 AND w.t
    GROUP BY ALL
),
child_judged AS (
    SELECT c.*,
        coalesce(b.base_susp, 0) AS base_susp,
        (SELECT count(*) FROM excl AS x
          WHERE x.family_id = c.family_id AND x.indicator = c.indicator
            AND x.person_ref = c.person_ref AND x.category = 'SUSPENSION'
            AND x.term_idx BETWEEN c.t - $terms + 1 AND c.t) AS susp,
        (SELECT count(*) FROM excl AS x
          WHERE x.family_id = c.family_id AND x.indicator = c.indicator
            AND x.person_ref = c.person_ref AND x.category = 'PERMANENT'
            AND x.term_idx BETWEEN c.t - $terms + 1 AND c.t) AS perm
    FROM child_win AS c
    LEFT JOIN baseline AS b
      ON b.family_id = c.family_id AND b.indicator = c.indicator AND b.person_ref = c.person_ref
),
child_ok AS (
    SELECT *,
        n_terms >= greatest(school_terms, 1) AND possible > 0
        AND (CASE WHEN $strictly_above THEN (1 - absence / possible) > $min_attendance
                  ELSE (1 - absence / possible) >= $min_attendance END)
        AND ($max_susp IS NULL OR susp <= CASE
                WHEN $low_below IS NOT NULL AND base_susp < $low_below THEN $low_max
                ELSE $max_susp END)
        AND ($min_red IS NULL OR base_susp = 0 OR susp <= base_susp * (1 - $min_red))
        AND (NOT $no_perm OR perm = 0) AS ok
    FROM child_judged
),
-- the identified child (a person-level indicator) must itself have every term
-- of the window: siblings attending cannot stand in for a child with no
-- attendance rows (e.g. one not enrolled anywhere)
fam_win AS (
    SELECT c.family_id, c.indicator, c.t,
           bool_and(c.ok) AND (any_value(tg.person_ref) IS NULL
                               OR bool_or(c.person_ref = tg.person_ref)) AS ok,
           min(1 - c.absence / nullif(c.possible, 0)) AS worst
    FROM child_ok AS c
    JOIN targets AS tg ON tg.family_id = c.family_id AND tg.indicator = c.indicator
    GROUP BY ALL
),
runs AS (
    SELECT *, max(CASE WHEN NOT ok THEN t END) OVER (PARTITION BY family_id, indicator) AS last_bad
    FROM fam_win
),
res AS (
    SELECT r.family_id, r.indicator,
        bool_and(r.ok) FILTER (WHERE r.t = s.latest_term) AS ok_now,
        max(r.worst) FILTER (WHERE r.t = s.latest_term) AS worst_now,
        min(r.t) FILTER (WHERE r.ok AND (r.last_bad IS NULL OR r.t > r.last_bad)) AS first_t
    FROM runs AS r
    JOIN span AS s ON s.family_id = r.family_id AND s.indicator = r.indicator
    GROUP BY ALL
),
has_rows AS (
    SELECT DISTINCT family_id, indicator FROM att
)
-- @results
SELECT
    $outcome_id AS outcome_id, s.family_id, s.indicator,
    CASE WHEN h.family_id IS NULL THEN 'insufficient_data'
         WHEN s.latest_term IS NULL OR s.first_term + $terms - 1 > s.latest_term
             THEN 'not_yet_sustained'
         WHEN r.ok_now IS NULL THEN 'insufficient_data'
         WHEN r.ok_now THEN 'achieved'
         ELSE 'not_achieved' END AS status,
    CASE WHEN h.family_id IS NOT NULL AND r.ok_now THEN least(
        CASE r.first_t % 3 WHEN 0 THEN make_date(r.first_t // 3, 12, 31)
                           WHEN 1 THEN make_date(r.first_t // 3 + 1, 4, 30)
                           ELSE make_date(r.first_t // 3 + 1, 8, 31) END,
        (SELECT as_of FROM meta.run_parameters)) END AS achieved_on,
    'terms ' || s.first_term || '..' || coalesce(CAST(s.latest_term AS VARCHAR), '-')
        || ' worst attendance ' || coalesce(CAST(round(r.worst_now, 3) AS VARCHAR), '-') AS detail
FROM span AS s
LEFT JOIN res AS r ON r.family_id = s.family_id AND r.indicator = s.indicator
LEFT JOIN has_rows AS h ON h.family_id = s.family_id AND h.indicator = s.indicator
-- @evidence
SELECT $outcome_id AS outcome_id, a.family_id, a.indicator, a.extract, a.delivery_id, a.month,
       a.record_key, a.person_ref, a.match_method, a.match_probability,
       'attendance ' || round(1 - a.absence / nullif(a.possible, 0), 3) AS detail
FROM att AS a
JOIN span AS s ON s.family_id = a.family_id AND s.indicator = a.indicator
WHERE a.term_idx BETWEEN greatest(s.first_term, s.latest_term - $terms + 1) AND s.latest_term
UNION ALL
SELECT $outcome_id, x.family_id, x.indicator, x.extract, x.delivery_id, x.month,
       x.record_key, x.person_ref, x.match_method, x.match_probability,
       lower(x.category) || ' on ' || strftime(x.start_date, '%Y-%m-%d')
FROM excl AS x
WHERE x.start_date >= CAST(x.attached_on - INTERVAL 12 MONTH AS DATE)
