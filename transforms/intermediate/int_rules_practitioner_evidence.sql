-- Practitioner evidence recorded by the as-of date for attached families, read
-- by what it is. A row whose outcome_code is one of this plan's indicators or
-- outcome lines (code_usable) is read by its code alone. A row without one is
-- read through the vocabulary (rules/evidence_vocabulary.yaml, loaded as
-- intermediate.int_rules_vocabulary): by its kind (a debt plan) or by the
-- service or programme its domain names; vocab_targets are the indicators or
-- outcome lines it can evidence, and route says how it was read. Family Star
-- Plus domains are resolved to their number from the number or a name.
-- unmatched_reason is set for a row that supports no outcome (it is listed in
-- marts.unmatched_evidence so the council can fix its recording).
WITH ev AS (
    SELECT
        e.*,
        f.attached_on,
        evidence_norm(e.domain) AS domain_norm,
        upper(trim(e.outcome_code)) AS code,
        coalesce(list_contains((SELECT plan_codes FROM meta.run_parameters), upper(trim(e.outcome_code))), FALSE)
            AS code_usable
    FROM staging.practitioner_evidence AS e
    JOIN staging.cohort_families AS f ON f.family_id = e.family_id
    WHERE e.start_date <= (SELECT as_of FROM meta.run_parameters)
      AND f.attached_on <= (SELECT as_of FROM meta.run_parameters)
),
named AS (
    -- vocabulary names found in the domain: the whole domain, or whole words of it
    SELECT ev.evidence_id, v.entry, v.star_domain, v.targets,
           v.name_norm = ev.domain_norm AS whole, length(v.name_norm) AS len
    FROM ev
    JOIN intermediate.int_rules_vocabulary AS v
      ON v.kind = ev.kind AND v.name_norm IS NOT NULL AND ev.domain_norm <> ''
     AND (v.name_norm = ev.domain_norm
          OR (NOT v.exact AND (' ' || ev.domain_norm || ' ') LIKE ('% ' || v.name_norm || ' %')))
),
best AS (
    -- the whole-domain match, else the longest name; two entries tied match neither
    SELECT evidence_id,
           CASE WHEN count(DISTINCT entry) = 1 THEN any_value(entry) END AS entry,
           CASE WHEN count(DISTINCT entry) = 1 THEN any_value(star_domain) END AS star_by_name,
           CASE WHEN count(DISTINCT entry) = 1 THEN any_value(targets) END AS targets,
           count(DISTINCT entry) AS n_entries
    FROM named
    GROUP BY evidence_id, whole, len
    QUALIFY rank() OVER (PARTITION BY evidence_id ORDER BY whole DESC, len DESC) = 1
),
resolved AS (
    SELECT
        ev.*,
        CASE WHEN ev.kind = 'family_star' THEN coalesce(
            TRY_CAST(nullif(regexp_extract(ev.domain_norm,
                                           '^(?:domain )?([0-9]{1,2})(?: .*)?$', 1), '')
                     AS INTEGER),
            b.star_by_name) END AS star_num,
        k.targets AS kind_targets,
        b.entry AS vocab_entry,
        b.targets AS name_targets,
        coalesce(b.n_entries, 0) AS n_entries
    FROM ev
    LEFT JOIN best AS b ON b.evidence_id = ev.evidence_id
    LEFT JOIN intermediate.int_rules_vocabulary AS k ON k.kind = ev.kind AND k.name IS NULL
)
SELECT
    family_id,
    person_ref,
    evidence_id,
    kind,
    domain,
    CASE WHEN star_num BETWEEN 1 AND 10 THEN star_num END AS star_domain,
    score,
    outcome_code,
    code,
    code_usable,
    CASE WHEN code_usable THEN NULL
         WHEN kind_targets IS NOT NULL THEN kind_targets
         ELSE name_targets END AS vocab_targets,
    CASE WHEN code_usable THEN 'outcome_code ' || trim(outcome_code)
         WHEN kind_targets IS NOT NULL THEN 'kind ' || kind
         WHEN vocab_entry IS NOT NULL AND kind = 'service_engagement'
             THEN 'service named ''' || trim(domain) || ''''
         WHEN vocab_entry IS NOT NULL THEN 'programme named ''' || trim(domain) || ''''
         WHEN kind = 'family_star' AND star_num BETWEEN 1 AND 10
             THEN 'Family Star domain ' || star_num
    END AS route,
    CASE
        WHEN kind = 'family_star' THEN
            CASE WHEN star_num IS NULL OR star_num NOT BETWEEN 1 AND 10
                 THEN 'Family Star domain not recognised' END
        WHEN code_usable OR kind_targets IS NOT NULL THEN NULL
        WHEN kind IN ('service_engagement', 'programme_completed') THEN
            CASE WHEN vocab_entry IS NOT NULL THEN NULL
                 WHEN n_entries > 1 THEN 'domain names more than one vocabulary entry'
                 WHEN domain_norm IS NULL OR domain_norm = '' THEN 'no outcome_code and no domain'
                 ELSE 'no outcome_code of this plan and the domain matches no vocabulary entry'
            END
        ELSE 'no outcome_code of this plan'
    END AS unmatched_reason,
    start_date,
    -- A statement or a Family Star reading is made at a point in time: an end
    -- date on or before its start is its own date (case systems differ), not
    -- the end of what it states. Any other end date ends the evidence.
    CASE WHEN kind IN ('professional_statement', 'family_star') AND end_date <= start_date
             THEN NULL
         WHEN end_date <= (SELECT as_of FROM meta.run_parameters) THEN end_date END AS end_date,
    attached_on,
    'practitioner_evidence' AS extract,
    _delivery_id AS delivery_id,
    _month AS month,
    evidence_id AS record_key,
    CASE WHEN person_ref IS NULL THEN 'family' ELSE 'case_system' END AS match_method,
    1.0::DOUBLE AS match_probability
FROM resolved
