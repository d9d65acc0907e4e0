-- staging.social_care_missing: the latest social_care_missing.csv snapshot delivered by the as-of month.
-- Snapshot: the file is the whole truth for its scope; a key absent from the
-- latest delivery has been deleted. The month is the run's,
-- read from meta.run_parameters (no row: the latest delivery), so the view
-- shows the same records to every later reader of the published warehouse.
SELECT r.* EXCLUDE (_load_id, _sha256)
FROM raw.social_care_missing AS r
WHERE r._delivery_id = (
    SELECT d.delivery_id
    FROM meta.deliveries AS d
    WHERE d.extract = 'social_care_missing'
      AND d.status = 'loaded'
      AND d.month <= coalesce((SELECT as_of_month FROM meta.run_parameters), '9999-12')
    ORDER BY d.month DESC, d.delivery_id DESC
    LIMIT 1
)
