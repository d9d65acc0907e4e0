-- Countable events per family and person, one row per event and measure,
-- carrying the lineage that a claim's evidence needs. Events dated after the
-- as-of date are ignored; an offence is proven only when its outcome date is
-- set and on or before the as-of date.
WITH yot AS (
    SELECT o.*, lr.family_id, lr.person_ref, lr.dob, lr.match_method, lr.match_probability
    FROM staging.yot_offences AS o
    JOIN intermediate.int_rules_linked_records AS lr
      ON lr.extract = 'yot_offences' AND lr.record_key = o.offence_id
    WHERE o.offence_date <= (SELECT as_of FROM meta.run_parameters)
),
incidents AS (
    SELECT i.*, CAST(i.reported_at AS DATE) AS reported_on
    FROM staging.police_incidents AS i
    WHERE CAST(i.reported_at AS DATE) <= (SELECT as_of FROM meta.run_parameters)
),
nominals AS (
    SELECT n.*, i.reported_on, i.category, i.domestic_flag, lr.family_id, lr.person_ref, lr.dob,
           lr.match_method, lr.match_probability
    FROM staging.police_nominals AS n
    JOIN incidents AS i ON i.incident_ref = n.incident_ref
    JOIN intermediate.int_rules_linked_records AS lr
      ON lr.extract = 'police_nominals' AND lr.record_key = n.incident_ref || '|' || n.nominal_id
),
household AS (
    -- incidents at the family's address while they lived there
    SELECT i.incident_ref, i.reported_on, i.category, i.domestic_flag, i._delivery_id, i._month,
           h.family_id, NULL::VARCHAR AS person_ref, 'household:' || h.match_method AS match_method,
           NULL::DOUBLE AS match_probability
    FROM incidents AS i
    JOIN linkage.household_links AS h ON h.incident_ref = i.incident_ref
    JOIN (SELECT DISTINCT family_id FROM intermediate.int_rules_people) AS f ON f.family_id = h.family_id
    UNION ALL
    -- incidents naming a family member
    SELECT n.incident_ref, n.reported_on, n.category, n.domestic_flag, n._delivery_id, n._month,
           n.family_id, n.person_ref, 'nominal:' || n.match_method, n.match_probability
    FROM nominals AS n
),
household_dedup AS (
    SELECT * FROM household
    QUALIFY row_number() OVER (
        PARTITION BY family_id, incident_ref
        ORDER BY (person_ref IS NULL) DESC, match_probability DESC NULLS LAST, person_ref
    ) = 1
),
events AS (
    SELECT 'proven_offences' AS measure, family_id, person_ref, dob, offence_date AS event_date,
           gravity_score AS gravity, substance_risk AS score, 'yot_offences' AS extract,
           _delivery_id AS delivery_id, _month AS month, offence_id AS record_key,
           match_method, match_probability,
           'proven offence ' || offence_category || ' gravity ' || gravity_score AS detail
    FROM yot
    WHERE outcome_date IS NOT NULL AND outcome_date <= (SELECT as_of FROM meta.run_parameters)
    UNION ALL
    SELECT 'yot_offences', family_id, person_ref, dob, offence_date, gravity_score, substance_risk,
           'yot_offences', _delivery_id, _month, offence_id, match_method, match_probability,
           'YOT offence ' || offence_category
    FROM yot
    UNION ALL
    SELECT 'substance_risk', family_id, person_ref, dob, offence_date, gravity_score, substance_risk,
           'yot_offences', _delivery_id, _month, offence_id, match_method, match_probability,
           'YOT substance risk ' || substance_risk
    FROM yot
    WHERE substance_risk IS NOT NULL
    UNION ALL
    SELECT 'adult_offences', family_id, person_ref, dob, reported_on, NULL, NULL,
           'police_nominals', _delivery_id, _month, incident_ref || '|' || nominal_id,
           match_method, match_probability, 'police ' || role || ' ' || outcome
    FROM nominals
    WHERE role IN ('OFFENDER', 'SUSPECT')
      AND outcome IN ('CHARGED', 'CAUTIONED', 'COMMUNITY_RESOLUTION')
    UNION ALL
    SELECT 'asb_incidents', family_id, person_ref, NULL, reported_on, NULL, NULL,
           'police_incidents', _delivery_id, _month, incident_ref, match_method, match_probability,
           'ASB incident'
    FROM household_dedup
    WHERE category = 'ASB'
    UNION ALL
    SELECT 'domestic_incidents', family_id, person_ref, NULL, reported_on, NULL, NULL,
           'police_incidents', _delivery_id, _month, incident_ref, match_method, match_probability,
           'domestic incident'
    FROM household_dedup
    WHERE category = 'DOMESTIC' OR domestic_flag = 'Y'
    UNION ALL
    SELECT 'police_callouts', family_id, person_ref, NULL, reported_on, NULL, NULL,
           'police_incidents', _delivery_id, _month, incident_ref, match_method, match_probability,
           'police call-out ' || category
    FROM household_dedup
    UNION ALL
    SELECT 'missing_episodes', lr.family_id, lr.person_ref, lr.dob, CAST(m.start_at AS DATE),
           NULL, NULL, 'social_care_missing', m._delivery_id, m._month, m.missing_id,
           lr.match_method, lr.match_probability, 'missing episode ' || m.missing_type
    FROM staging.social_care_missing AS m
    JOIN intermediate.int_rules_linked_records AS lr
      ON lr.extract = 'social_care_missing' AND lr.record_key = m.missing_id
    WHERE CAST(m.start_at AS DATE) <= (SELECT as_of FROM meta.run_parameters)
    UNION ALL
    SELECT 'sc_referrals', lr.family_id, lr.person_ref, lr.dob, e.start_date, NULL, NULL,
           'social_care_episodes', e._delivery_id, e._month, e.episode_id,
           lr.match_method, lr.match_probability, 'social care referral'
    FROM staging.social_care_episodes AS e
    JOIN intermediate.int_rules_linked_records AS lr
      ON lr.extract = 'social_care_episodes' AND lr.record_key = e.episode_id
    WHERE e.episode_type = 'REFERRAL' AND e.start_date <= (SELECT as_of FROM meta.run_parameters)
)
SELECT
    e.measure, e.family_id, e.person_ref, e.event_date, e.gravity, e.score,
    -- child at the time of the event (household events have no person)
    CASE WHEN e.person_ref IS NULL THEN NULL
         WHEN p.dob IS NULL THEN p.role = 'child'
         ELSE CAST(p.dob + INTERVAL 18 YEAR AS DATE) > e.event_date END AS is_child,
    e.extract, e.delivery_id, e.month, e.record_key, e.match_method, e.match_probability, e.detail
FROM events AS e
LEFT JOIN intermediate.int_rules_people AS p ON p.person_ref = e.person_ref
