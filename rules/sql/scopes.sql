-- Who a rule looks at, defined once: the rule templates call these with the
-- rule's scope as a value ('person', 'family', 'children', 'adults').
-- Created as session macros before the rules are built.

-- An event (offence, incident, episode ...) counts for a problem: person = the
-- problem's person (or events not tied to one), children / adults by the event.
CREATE OR REPLACE TEMP MACRO event_in_scope(scope, target_person, event_person, is_child) AS
    CASE scope
        WHEN 'person' THEN target_person IS NULL OR event_person IS NULL
                           OR event_person = target_person
        WHEN 'children' THEN coalesce(is_child, FALSE)
        WHEN 'adults' THEN NOT coalesce(is_child, TRUE)
        ELSE TRUE END;

-- A family member is looked at for a problem: the problem's person always is.
CREATE OR REPLACE TEMP MACRO person_in_scope(scope, target_person, person, is_adult) AS
    CASE scope
        WHEN 'person' THEN target_person IS NULL OR person = target_person
        WHEN 'children' THEN NOT is_adult OR person = target_person
        WHEN 'adults' THEN is_adult OR person = target_person
        ELSE TRUE END;

-- Practitioner evidence counts for a problem: person = about the problem's
-- person (or about no one in particular); any other scope takes the family's.
CREATE OR REPLACE TEMP MACRO evidence_in_scope(scope, target_person, evidence_person) AS
    CASE scope
        WHEN 'person' THEN target_person IS NULL OR evidence_person IS NULL
                           OR evidence_person = target_person
        ELSE TRUE END;
