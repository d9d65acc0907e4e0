-- Every claim in the ledger with its current status (no withdrawal reasons or names).
SELECT
    meta.pseudonym(CAST(c.claim_id AS VARCHAR)) AS claim_key,
    meta.pseudonym(c.family_id) AS family_key,
    c.claim_type,
    strftime(c.achieved_on, '%Y-%m') AS achieved_month,
    c.problems,
    c.run_id,
    c.plan,
    c.as_of,
    strftime(c.claimed_at, '%Y-%m') AS claimed_month,
    c.status,
    strftime(c.withdrawn_at, '%Y-%m') AS withdrawn_month
FROM claims.ledger AS c
