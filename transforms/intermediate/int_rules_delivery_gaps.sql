-- Months up to the as-of month in which a monthly extract was not delivered:
-- every such month after its first delivery for a delta, and for a snapshot
-- (the whole truth at each delivery) the months after its latest delivery.
WITH d AS (SELECT DISTINCT extract, month FROM intermediate.int_rules_delivered),
span AS (
    SELECT extract, min(month) AS first_month, max(month) AS last_month FROM d
    WHERE month <= strftime((SELECT as_of FROM meta.run_parameters), '%Y-%m') GROUP BY extract
),
months AS (
    SELECT extract, last_month, strftime(m, '%Y-%m') AS month
    FROM (SELECT s.extract, s.last_month,
                 unnest(generate_series(CAST(s.first_month || '-01' AS DATE),
                        CAST(strftime((SELECT as_of FROM meta.run_parameters), '%Y-%m-01') AS DATE),
                        INTERVAL 1 MONTH)) AS m
          FROM span AS s)
)
SELECT m.extract, m.extract || '.csv' AS file, m.month
FROM months AS m
LEFT JOIN d ON d.extract = m.extract AND d.month = m.month
WHERE d.month IS NULL
  AND (NOT list_contains((SELECT snapshot_extracts FROM meta.run_parameters), m.extract) OR m.month > m.last_month)
ORDER BY m.extract, m.month
