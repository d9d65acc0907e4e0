-- Rule kind episode_closed_no_rereferral: the social care involvement of the
-- children in scope has closed, was not stepped up, no re-referral or
-- escalation followed, and the sustainment period since closure has passed.
-- With a month since attachment for which social care was not delivered, "no
-- re-referral" cannot be shown: insufficient_data.
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
people AS (
    SELECT t.family_id, t.indicator, t.attached_on, t.identified_on, p.person_ref
    FROM targets AS t
    JOIN intermediate.int_rules_people AS p ON p.family_id = t.family_id
    WHERE person_in_scope($scope, t.person_ref, p.person_ref, p.is_adult)
),
eps AS (
    SELECT pp.family_id, pp.indicator, pp.attached_on, pp.identified_on, e.*
        EXCLUDE (family_id, person_ref), e.person_ref
    FROM people AS pp
    JOIN intermediate.int_rules_care_episodes AS e ON e.person_ref = pp.person_ref
),
rel AS (
    SELECT * FROM eps
    WHERE list_contains($closed_types, episode_type)
      AND (end_date IS NULL OR end_date >= least(identified_on, attached_on))
),
agg AS (
    SELECT t.family_id, t.indicator, t.attached_on,
        count(r.episode_id) AS n_rel,
        count(r.episode_id) FILTER (WHERE r.end_date IS NULL) AS n_open,
        max(r.end_date) AS closed_on,
        arg_max(r.end_reason, r.end_date) AS last_reason
    FROM targets AS t
    LEFT JOIN rel AS r ON r.family_id = t.family_id AND r.indicator = t.indicator
    GROUP BY ALL
),
dated AS (
    SELECT *, greatest(coalesce(closed_on, attached_on), attached_on) AS from_date FROM agg
),
later AS (
    SELECT d.family_id, d.indicator,
        count(e.episode_id) FILTER (
            WHERE list_contains($rereferral_types, e.episode_type) AND e.start_date > d.from_date) AS n_reref,
        count(e.episode_id) FILTER (
            WHERE list_contains($escalation_types, e.episode_type) AND e.start_date >= d.attached_on)
            AS n_escal
    FROM dated AS d
    LEFT JOIN eps AS e ON e.family_id = d.family_id AND e.indicator = d.indicator
    GROUP BY ALL
),
gaps AS (
    -- months since attachment with no social care delivery: no re-referral seen
    -- there is no evidence of none
    SELECT d.family_id, d.indicator, count(*) AS n_gaps,
           min(g.file || ' for ' || g.month) AS first_gap
    FROM dated AS d
    JOIN intermediate.int_rules_delivery_gaps AS g
      ON g.extract = 'social_care_episodes'
     AND g.month >= strftime(d.attached_on, '%Y-%m')
     AND g.month <= strftime((SELECT as_of FROM meta.run_parameters), '%Y-%m')
    GROUP BY ALL
)
-- @results
SELECT
    $outcome_id AS outcome_id, d.family_id, d.indicator,
    CASE WHEN NOT (SELECT ok FROM has_data) THEN 'insufficient_data'
         WHEN d.n_rel = 0 AND $if_no_episode = 'insufficient_data' THEN 'insufficient_data'
         WHEN d.n_rel = 0 AND $if_no_episode = 'not_achieved' THEN 'not_achieved'
         WHEN d.n_open > 0 THEN 'not_achieved'
         WHEN list_contains($bad_end_reasons, d.last_reason) THEN 'not_achieved'
         WHEN l.n_reref > 0 OR l.n_escal > 0 THEN 'not_achieved'
         WHEN CAST(d.from_date + INTERVAL ($sustain_months) MONTH AS DATE) > (SELECT as_of FROM meta.run_parameters)
             THEN 'not_yet_sustained'
         WHEN gp.n_gaps > 0 THEN 'insufficient_data'
         ELSE 'achieved' END AS status,
    CASE WHEN (SELECT ok FROM has_data) AND NOT (d.n_rel = 0 AND $if_no_episode <> 'since_attachment')
          AND d.n_open = 0 AND coalesce(NOT list_contains($bad_end_reasons, d.last_reason), TRUE)
          AND l.n_reref = 0 AND l.n_escal = 0
          AND CAST(d.from_date + INTERVAL ($sustain_months) MONTH AS DATE) <= (SELECT as_of FROM meta.run_parameters)
          AND gp.n_gaps IS NULL
         THEN CAST(d.from_date + INTERVAL ($sustain_months) MONTH AS DATE) END AS achieved_on,
    'episodes=' || d.n_rel || ' open=' || d.n_open || ' closed_on='
        || coalesce(strftime(d.closed_on, '%Y-%m-%d'), '-') || ' rereferrals=' || l.n_reref
        || ' escalations=' || l.n_escal
        || coalesce(' missing delivery: ' || gp.first_gap
                    || CASE WHEN gp.n_gaps > 1 THEN ' (and ' || (gp.n_gaps - 1) || ' more)'
                            ELSE '' END, '') AS detail
FROM dated AS d
JOIN later AS l ON l.family_id = d.family_id AND l.indicator = d.indicator
LEFT JOIN gaps AS gp ON gp.family_id = d.family_id AND gp.indicator = d.indicator
-- @evidence
SELECT $outcome_id AS outcome_id, e.family_id, e.indicator, e.extract, e.delivery_id, e.month,
       e.record_key, e.person_ref, e.match_method, e.match_probability,
       e.episode_type || ' ' || strftime(e.start_date, '%Y-%m-%d') || '..'
           || coalesce(strftime(e.end_date, '%Y-%m-%d'), 'open')
           || coalesce(' ' || e.end_reason, '') AS detail
FROM eps AS e
WHERE (list_contains($closed_types, e.episode_type)
       AND (e.end_date IS NULL OR e.end_date >= least(e.identified_on, e.attached_on)))
   OR ((list_contains($rereferral_types, e.episode_type)
        OR list_contains($escalation_types, e.episode_type)) AND e.start_date >= e.attached_on)
