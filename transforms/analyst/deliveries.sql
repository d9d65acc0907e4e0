-- One row per delivered file: rows read, loaded, rejected and flagged.
SELECT
    d.delivery_id, d.load_id, d.month, d.file, d.extract, d.status,
    d.rows_read, d.rows_loaded, d.rows_rejected, d.values_flagged, d.loaded_at
FROM meta.deliveries AS d
