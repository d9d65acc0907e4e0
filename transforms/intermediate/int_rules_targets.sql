-- The problems each outcome rule is judged for: a rule's rows are the identified
-- problems (intermediate.int_rules_problems) of the indicators it is evaluated for
-- (a line's indicators; a component inherits those of the lines it is part of).
-- One model for every rule: each rule template selects its own rows by outcome_id.
SELECT r.outcome_id, p.family_id, p.indicator, p.person_ref, p.attached_on, p.identified_on
FROM intermediate.int_rules_rule_indicators AS r
JOIN intermediate.int_rules_problems AS p ON p.indicator = r.indicator
