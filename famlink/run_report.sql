-- The run report's figures (famlink/run_report.py), read from the warehouse the
-- run built, just before it is published (or, for a back-run, discarded).
-- Each query is named by a "-- name:" line; $run_id, $previous_run_id, $as_of,
-- $as_of_month, $load_id and $previous_load_id are bound by the report.

-- name: run
SELECT run_id, plan, as_of, recorded_at FROM claims.runs WHERE run_id = (SELECT max(run_id) FROM claims.runs);

-- name: previous_run
SELECT run_id, as_of, recorded_at FROM claims.runs WHERE run_id < $run_id ORDER BY run_id DESC LIMIT 1;

-- name: extracts
-- rows per extract: this run's load beside every load the warehouse holds
SELECT extract,
       count(*) FILTER (WHERE load_id = $load_id AND status = 'loaded') AS files_this_run,
       coalesce(sum(rows_read) FILTER (WHERE load_id = $load_id), 0) AS rows_read,
       coalesce(sum(rows_loaded) FILTER (WHERE load_id = $load_id), 0) AS rows_loaded,
       coalesce(sum(rows_rejected) FILTER (WHERE load_id = $load_id), 0) AS rows_rejected,
       coalesce(sum(values_flagged) FILTER (WHERE load_id = $load_id), 0) AS values_flagged,
       coalesce(sum(rows_loaded), 0) AS rows_loaded_all_runs
FROM meta.deliveries GROUP BY extract ORDER BY extract;

-- name: delivery_months
-- up to the as-of month: a back-run does not count the later months an earlier run saw
SELECT extract, month, status FROM meta.delivery_months WHERE month <= $as_of_month
ORDER BY extract, month;

-- name: rejects_by_load
-- rejected rows and flagged values of this run's load and of the previous run's
SELECT coalesce(sum(rows_rejected) FILTER (WHERE load_id = $load_id), 0),
       coalesce(sum(values_flagged) FILTER (WHERE load_id = $load_id), 0),
       coalesce(sum(rows_rejected) FILTER (WHERE load_id = $previous_load_id), 0),
       coalesce(sum(values_flagged) FILTER (WHERE load_id = $previous_load_id), 0)
FROM meta.deliveries;

-- name: probabilities
SELECT match_probability FROM linkage.person_pairs WHERE match_probability IS NOT NULL;

-- name: links_per_source
SELECT extract, count(*) FILTER (WHERE person_ref IS NOT NULL) AS linked_to_member,
       count(*) FILTER (WHERE person_ref IS NULL) AS not_linked_to_member
FROM linkage.record_links GROUP BY extract ORDER BY extract;

-- name: clerical_review
SELECT count(*) FROM linkage.clerical_review;

-- name: doubtful_links
SELECT count(*), count(*) FILTER (WHERE decision IS NULL) FROM linkage.doubtful_links;

-- name: outcomes
-- each headline problem's identified problems by status at this run's as-of
SELECT problem, status, count(*) FROM marts.problem_status
WHERE as_of = $as_of GROUP BY problem, status ORDER BY problem, status;

-- name: claims_at
-- the claims that stand for this as-of (what the return lists), by type
SELECT claim_type, count(*) FROM claims.ledger
WHERE as_of = $as_of AND status = 'claimed' GROUP BY claim_type ORDER BY claim_type;

-- name: new_claims
SELECT claim_type, count(*) FROM claims.events
WHERE event = 'claimed' AND run_id = $run_id GROUP BY claim_type ORDER BY claim_type;

-- name: held
SELECT count(DISTINCT family_id) FROM claims.assessments
WHERE run_id = $run_id AND decision = 'held_for_review';

-- name: held_pairs
SELECT count(*) FROM claims.held_pairs WHERE run_id = $run_id;

-- name: decisions
SELECT decision, count(*) FROM claims.assessments WHERE run_id = $run_id
GROUP BY decision ORDER BY decision;

-- name: withdrawals_since
-- withdrawals recorded after the previous run (all of them at a warehouse's first run)
SELECT count(*) FROM claims.events
WHERE event = 'withdrawn'
  AND recorded_at > coalesce((SELECT recorded_at FROM claims.runs WHERE run_id = $previous_run_id),
                             TIMESTAMP '1900-01-01');
