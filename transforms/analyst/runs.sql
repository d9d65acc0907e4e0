-- One row per monthly run: plan, as-of and the families, claims and holds it counted.
SELECT
    r.run_id, r.plan, r.as_of, r.recorded_at, r.families, r.eligible_families,
    r.ssp_due, r.ce_due, r.both_due, r.new_claims, r.new_ssp, r.new_ce,
    r.already_claimed, r.held_for_review, r.famlink_version
FROM claims.runs AS r
