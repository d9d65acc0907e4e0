-- staging.police_incidents: current police_incidents.csv records as at the as-of month.
-- Delta: each delivery holds new and corrected records; the latest version of
-- a key wins, and record_status D deletes it. The month is the run's,
-- read from meta.run_parameters (no row: every delivery), so the view
-- shows the same records to every later reader of the published warehouse.
SELECT * EXCLUDE (_version)
FROM (
    SELECT r.* EXCLUDE (_load_id, _sha256),
           row_number() OVER (
               PARTITION BY incident_ref
               ORDER BY r._month DESC, r._delivery_id DESC, r._row_number DESC
           ) AS _version
    FROM raw.police_incidents AS r
    WHERE r._month <= coalesce((SELECT as_of_month FROM meta.run_parameters), '9999-12')
)
WHERE _version = 1
  AND coalesce(record_status, 'A') <> 'D'
