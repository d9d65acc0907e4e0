-- Social care episodes per linked child as known at the as-of date: an
-- episode that ends after the as-of date is still open at it.
SELECT
    lr.family_id,
    lr.person_ref,
    e.episode_id,
    e.episode_type,
    e.start_date,
    CASE WHEN e.end_date <= (SELECT as_of FROM meta.run_parameters) THEN e.end_date END AS end_date,
    CASE WHEN e.end_date <= (SELECT as_of FROM meta.run_parameters) THEN e.end_reason END AS end_reason,
    'social_care_episodes' AS extract,
    e._delivery_id AS delivery_id,
    e._month AS month,
    e.episode_id AS record_key,
    lr.match_method,
    lr.match_probability
FROM staging.social_care_episodes AS e
JOIN intermediate.int_rules_linked_records AS lr
  ON lr.extract = 'social_care_episodes' AND lr.record_key = e.episode_id
WHERE e.start_date <= (SELECT as_of FROM meta.run_parameters)
