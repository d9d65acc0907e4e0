-- Attendance per linked pupil and term. Terms are numbered consecutively
-- (academic start year * 3 + 0/1/2 for AUT/SPR/SUM) so that "3 consecutive
-- terms" is a range of term numbers. Only terms that had started by the
-- as-of date count; latest_term is the newest term present in the deliveries
-- that have arrived (school data is about a term in arrears).
WITH t AS (
    SELECT
        a.*,
        CAST(substr(a.academic_year, 1, 4) AS INTEGER) AS start_year,
        CASE a.term WHEN 'AUT' THEN 0 WHEN 'SPR' THEN 1 ELSE 2 END AS term_no
    FROM staging.school_attendance AS a
),
terms AS (
    SELECT
        t.*,
        start_year * 3 + term_no AS term_idx,
        CASE term_no WHEN 0 THEN make_date(start_year, 9, 1)
                     WHEN 1 THEN make_date(start_year + 1, 1, 1)
                     ELSE make_date(start_year + 1, 5, 1) END AS term_start,
        CASE term_no WHEN 0 THEN make_date(start_year, 12, 31)
                     WHEN 1 THEN make_date(start_year + 1, 4, 30)
                     ELSE make_date(start_year + 1, 8, 31) END AS term_end
    FROM t
),
arrived AS (
    SELECT * FROM terms WHERE term_start <= (SELECT as_of FROM meta.run_parameters)
)
SELECT
    lr.family_id,
    lr.person_ref,
    a.term_idx,
    a.academic_year,
    a.term,
    a.term_start,
    a.term_end,
    a.phase,
    a.possible_sessions,
    a.authorised_absence,
    a.unauthorised_absence,
    (SELECT max(term_idx) FROM arrived) AS latest_term,
    'school_attendance' AS extract,
    a._delivery_id AS delivery_id,
    a._month AS month,
    a.upn || '|' || a.academic_year || '|' || a.term AS record_key,
    lr.match_method,
    lr.match_probability
FROM arrived AS a
JOIN intermediate.int_rules_linked_records AS lr
  ON lr.extract = 'school_attendance'
 AND lr.record_key = a.upn || '|' || a.academic_year || '|' || a.term
