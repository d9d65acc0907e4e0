-- One continuous-employment route: each move off out-of-work benefit (a
-- spell ending, or a UC regime change) after attachment, followed day by day
-- over the route's window: it qualifies on the day the qualifying days
-- (employment, or the target UC regime) reach min_weeks with no day back on
-- an out-of-work benefit.
WITH
adults AS (
    SELECT person_ref, family_id, attached_on FROM intermediate.int_rules_people WHERE is_adult
),
spells AS (
    SELECT * FROM intermediate.int_rules_benefit_spells
),
oow AS (
    SELECT * FROM spells
    WHERE (benefit <> 'UC' AND list_contains($oow_benefits, benefit))
       OR (benefit = 'UC' AND (uc_regime IS NULL OR list_contains($oow_regimes, uc_regime)))
),
trig AS (
    -- a spell of an out-of-work benefit ending (trigger spell_end) ...
    SELECT s.person_ref, CAST(s.end_date + 1 AS DATE) AS off_on, s.record_key AS trigger_key
    FROM spells AS s JOIN adults AS a ON a.person_ref = s.person_ref
    WHERE $trigger = 'spell_end'
      AND list_contains($from_benefits, s.benefit)
      AND (NOT $has_from_regimes OR s.benefit <> 'UC' OR list_contains($from_regimes, s.uc_regime))
      AND s.end_date IS NOT NULL AND s.end_date + 1 >= a.attached_on
      AND s.end_date < (SELECT as_of FROM meta.run_parameters)
    UNION ALL
    -- ... or a move between UC regimes within a month (trigger regime_change)
    SELECT s2.person_ref, s2.start_date AS off_on, s2.record_key AS trigger_key
    FROM spells AS s1 JOIN spells AS s2 ON s2.person_ref = s1.person_ref
    JOIN adults AS a ON a.person_ref = s2.person_ref
    WHERE $trigger = 'regime_change'
      AND s1.benefit = 'UC' AND s2.benefit = 'UC'
      AND list_contains($from_regimes, s1.uc_regime)
      AND list_contains($to_regimes, s2.uc_regime)
      AND s1.end_date IS NOT NULL
      AND s2.start_date BETWEEN s1.end_date AND s1.end_date + 31
      AND s2.start_date >= a.attached_on
),
qualifying AS (
    -- days that count towards the route: employment, or the target UC regimes
    SELECT person_ref, start_date, end_date FROM intermediate.int_rules_employment_spells
    WHERE $qualifying = 'employment'
    UNION ALL
    SELECT person_ref, start_date, end_date FROM intermediate.int_rules_benefit_spells
    WHERE $qualifying = 'uc_regime' AND benefit = 'UC' AND list_contains($to_regimes, uc_regime)
),
days AS (
    SELECT t.person_ref, t.off_on,
        CAST(unnest(generate_series(
            CAST(t.off_on AS TIMESTAMP),
            CAST(least((SELECT as_of FROM meta.run_parameters), t.off_on + ($window_days - 1)) AS TIMESTAMP),
            INTERVAL 1 DAY)) AS DATE) AS day
    FROM trig AS t
),
q AS (
    SELECT d.person_ref, d.off_on, d.day, count(x.person_ref) > 0 AS qual
    FROM days AS d
    LEFT JOIN qualifying AS x
      ON x.person_ref = d.person_ref AND x.start_date <= d.day
     AND coalesce(x.end_date, (SELECT as_of FROM meta.run_parameters)) >= d.day
    GROUP BY ALL
),
b AS (
    SELECT d.person_ref, d.off_on, d.day, count(s.person_ref) > 0 AS brk
    FROM days AS d
    LEFT JOIN oow AS s
      ON s.person_ref = d.person_ref AND s.start_date <= d.day
     AND coalesce(s.end_date, (SELECT as_of FROM meta.run_parameters)) >= d.day
    GROUP BY ALL
),
run AS (
    SELECT q.person_ref, q.off_on, q.day,
        sum(CAST(q.qual AS INTEGER)) OVER w AS qual_days,
        sum(CAST(b.brk AS INTEGER)) OVER w AS brk_days
    FROM q
    JOIN b ON b.person_ref = q.person_ref AND b.off_on = q.off_on AND b.day = q.day
    WINDOW w AS (PARTITION BY q.person_ref, q.off_on ORDER BY q.day
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
res AS (
    SELECT t.person_ref, t.off_on, t.trigger_key,
        min(r.day) FILTER (WHERE r.qual_days >= $min_days AND r.brk_days = 0) AS qualifies_on,
        coalesce(max(r.brk_days), 0) AS brk_days,
        coalesce(max(r.qual_days), 0) AS qual_days,
        count(r.day) AS days_seen
    FROM trig AS t
    LEFT JOIN run AS r ON r.person_ref = t.person_ref AND r.off_on = t.off_on
    GROUP BY ALL
)
SELECT
    $route AS route, a.family_id, r.person_ref, r.off_on AS off_benefit_on, r.qualifies_on,
    r.trigger_key,
    CASE WHEN r.qualifies_on IS NOT NULL THEN 'achieved'
         WHEN r.brk_days = 0 AND r.qual_days + ($window_days - r.days_seen) >= $min_days
             THEN 'not_yet_sustained'
         ELSE 'not_achieved' END AS status
FROM res AS r
JOIN adults AS a ON a.person_ref = r.person_ref
