-- Each family's identified problems (indicators), by month.
SELECT
    meta.pseudonym(p.family_id) AS family_key,
    meta.pseudonym(p.person_ref) AS person_key,
    p.indicator,
    p.problem,
    strftime(p.identified_on, '%Y-%m') AS identified_month,
    strftime(p.attached_on, '%Y-%m') AS attached_month
FROM marts.family_problems AS p
