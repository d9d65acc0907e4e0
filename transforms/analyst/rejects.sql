-- Every rejected row and flagged value, without the value itself.
SELECT r.delivery_id, r.month, r.file, r.row_number, r."column", r.reason, r.severity
FROM meta.rejects AS r
