-- Practitioner evidence that supports no outcome under the plan: no outcome_code
-- of the plan and a kind or domain the evidence vocabulary does not know (or a
-- Family Star domain not recognised). Kept, counted and listed so that the
-- council can fix its recording or extend rules/evidence_vocabulary.yaml.
SELECT
    (SELECT plan FROM meta.run_parameters) AS plan,
    (SELECT as_of FROM meta.run_parameters) AS as_of,
    family_id,
    evidence_id,
    person_ref,
    kind,
    domain,
    outcome_code,
    start_date,
    end_date,
    delivery_id,
    month,
    unmatched_reason AS reason
FROM intermediate.int_rules_practitioner_evidence
WHERE unmatched_reason IS NOT NULL
ORDER BY family_id, evidence_id
