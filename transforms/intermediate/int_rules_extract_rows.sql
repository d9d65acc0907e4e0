-- Whether each extract an outcome rule's has-data test can rest on has any current
-- row (the event measures' extracts, rules.models.EVENT_MEASURES, and social care
-- episodes): a rule resting only on extracts with none is insufficient_data.
-- A test keeps this list equal to the extracts the rule kinds can rest on.
SELECT 'police_incidents' AS extract, count(*) > 0 AS has_rows FROM staging.police_incidents
UNION ALL
SELECT 'police_nominals', count(*) > 0 FROM staging.police_nominals
UNION ALL
SELECT 'social_care_episodes', count(*) > 0 FROM staging.social_care_episodes
UNION ALL
SELECT 'social_care_missing', count(*) > 0 FROM staging.social_care_missing
UNION ALL
SELECT 'yot_offences', count(*) > 0 FROM staging.yot_offences
