"""Which families are eligible, and which claim (SSP or CE) is due, at one run.

The whole decision is one SELECT over the marts so that the monthly run, the
``famlink explain`` audit pack and the tests all apply exactly the same rules.
The national rules it applies are declared once, in ``rules/national.yaml``
(``rules.national.load_national``). A wrong claim is paid back after audit and
a missed one can still be made at a later run, so every ambiguity is resolved
towards *not* claiming:

* Eligible: at least ``min_problems`` distinct *national* headline problems
  (first digit of the indicator code, in ``national_problems``) among the
  problems of the claim, and attached by the as-of. Thurrock's local problem 7
  is not a national headline problem, so it does not make a family eligible
  (DOMAIN.md: "at least 2 of 6").
* The problems of the claim are the rows of ``marts.family_problems``: the
  rules engine keeps only problems identified at attachment (within the plan's
  identification grace), in one place, ``int_rules_problems.sql``. A problem
  found later is not part of the claim and does not hold it back (DOMAIN.md:
  "Problems found later do not add to it"); this stage never sees it.
* SSP due: every problem of the claim (problem 7 included, since the plan sets
  outcomes for it) has ``problem_status`` 'achieved' with an ``achieved_on``
  between attachment and the as-of. An indicator with no status row counts as
  not achieved.
* CE due: an eligible family with a ``ce_status`` row 'achieved' whose
  ``qualifies_on`` lies between attachment and the as-of (and whose
  ``off_benefit_on``, when known, is not before attachment).
* Both due: the one achieved first is claimed; on a tie ``claim_ranking.on_tie``
  (SSP: it covers every problem, so it is the stronger claim).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from rules.national import load_national

# Stand-ins for a mart the run has not built (e.g. a plan with no CE route).
_EMPTY = {
    "marts.problem_status": (
        "(SELECT NULL::VARCHAR AS plan, NULL::DATE AS as_of, NULL::VARCHAR AS family_id, "
        "NULL::VARCHAR AS indicator, NULL::INTEGER AS problem, NULL::VARCHAR AS status, "
        "NULL::DATE AS achieved_on, NULL::VARCHAR AS outcome_id WHERE false)"
    ),
    "marts.ce_status": (
        "(SELECT NULL::VARCHAR AS plan, NULL::DATE AS as_of, NULL::VARCHAR AS family_id, "
        "NULL::VARCHAR AS person_ref, NULL::VARCHAR AS route, NULL::DATE AS off_benefit_on, "
        "NULL::DATE AS qualifies_on, NULL::VARCHAR AS status WHERE false)"
    ),
}

# One row per family in marts.family_problems, with the decision at the as-of.
# Every value is a named parameter bound by DuckDB (due_parameters: the run's plan,
# as-of and family, and the national rules), never text spliced into the SQL, so
# the same text works read-only; only a missing mart's stand-in is substituted.
DUE_SQL = """
WITH p AS (
    SELECT CAST($plan AS VARCHAR) AS plan,
           CAST($as_of AS DATE) AS as_of,
           CAST($only_family AS VARCHAR) AS only_family,
           CAST($national AS INTEGER[]) AS national,
           CAST($min_problems AS INTEGER) AS min_problems,
           CAST($ssp_on_tie AS BOOLEAN) AS ssp_on_tie
),
fp AS (
    SELECT fp.* FROM marts.family_problems AS fp, p
    WHERE p.only_family IS NULL OR fp.family_id = p.only_family
),
fam_attach AS (
    SELECT family_id, min(attached_on) AS attached_on FROM fp GROUP BY family_id
),
ind AS (
    SELECT family_id, trim(indicator) AS indicator,
           coalesce(min(problem),
                    TRY_CAST(regexp_extract(trim(indicator), '^([0-9])', 1) AS INTEGER)) AS problem
    FROM fp GROUP BY family_id, trim(indicator)
),
ind2 AS (
    SELECT ind.*, fa.attached_on FROM ind JOIN fam_attach AS fa USING (family_id)
),
ps AS (
    SELECT s.family_id, trim(s.indicator) AS indicator,
           string_agg(DISTINCT s.status, '/' ORDER BY s.status) AS status,
           max(s.achieved_on) AS achieved_on,
           bool_and(s.status = 'achieved' AND s.achieved_on IS NOT NULL) AS all_achieved,
           min(s.achieved_on) AS min_achieved_on
    FROM {problem_status} AS s, p
    WHERE s.plan = p.plan AND s.as_of = p.as_of
      AND (p.only_family IS NULL OR s.family_id = p.only_family)
    GROUP BY s.family_id, trim(s.indicator)
),
ind_status AS (
    SELECT ind2.*, coalesce(ps.status, 'no_status') AS status, ps.achieved_on,
           coalesce(ps.all_achieved AND ps.achieved_on <= p.as_of
                    AND ps.min_achieved_on >= ind2.attached_on, false) AS ok
    FROM ind2 LEFT JOIN ps USING (family_id, indicator), p
),
fam AS (
    SELECT family_id,
           any_value(attached_on) AS attached_on,
           count(DISTINCT problem) FILTER (
               WHERE list_contains((SELECT national FROM p), problem)) AS national_problems,
           list_sort(list_distinct(list(problem) FILTER (
               WHERE problem IS NOT NULL))) AS problems_at_attachment,
           count(*) AS indicators_at_attachment,
           bool_and(ok) AS all_ok,
           max(achieved_on) AS ssp_achieved_on,
           list(indicator || '=' || status ORDER BY indicator) FILTER (WHERE NOT ok) AS blocking
    FROM ind_status GROUP BY family_id
),
ce AS (
    SELECT c.family_id,
           min(c.qualifies_on) AS ce_achieved_on,
           arg_min(c.person_ref, c.qualifies_on) AS ce_person_ref,
           arg_min(c.route, c.qualifies_on) AS ce_route
    FROM {ce_status} AS c JOIN fam_attach AS fa USING (family_id), p
    WHERE c.plan = p.plan AND c.as_of = p.as_of AND c.status = 'achieved'
      AND c.qualifies_on IS NOT NULL
      AND c.qualifies_on <= p.as_of AND c.qualifies_on >= fa.attached_on
      AND (c.off_benefit_on IS NULL OR c.off_benefit_on >= fa.attached_on)
    GROUP BY c.family_id
),
decided AS (
    SELECT fam.*, ce.ce_achieved_on, ce.ce_person_ref, ce.ce_route,
           (fam.attached_on IS NOT NULL AND fam.attached_on <= p.as_of
            AND fam.national_problems >= p.min_problems) AS eligible
    FROM fam LEFT JOIN ce USING (family_id), p
),
due AS (
    SELECT decided.*,
           (eligible AND all_ok AND indicators_at_attachment > 0
            AND ssp_achieved_on IS NOT NULL) AS ssp_due,
           (eligible AND ce_achieved_on IS NOT NULL) AS ce_due
    FROM decided
),
ranked AS (
    -- both due: the one achieved first is claimed; on a tie, national claim_ranking.on_tie
    SELECT due.*,
           ssp_due AND (NOT ce_due OR ssp_achieved_on < ce_achieved_on
                        OR (p.ssp_on_tie AND ssp_achieved_on = ce_achieved_on)) AS ssp_first
    FROM due, p
)
SELECT family_id, attached_on, national_problems, problems_at_attachment,
       indicators_at_attachment, eligible, ssp_due, ssp_achieved_on, ce_due, ce_achieved_on,
       ce_person_ref, ce_route, coalesce(blocking, []) AS blocking,
       -- kept for the ledger's record: problems found later never reach this stage
       []::VARCHAR[] AS later_indicators,
       CASE WHEN ssp_first THEN 'SSP' WHEN ce_due THEN 'CE' END AS claim_type,
       CASE WHEN ssp_first THEN ssp_achieved_on
            WHEN ce_due THEN ce_achieved_on END AS achieved_on,
       CASE WHEN ssp_first THEN array_to_string(CAST(problems_at_attachment AS VARCHAR[]), ';')
            WHEN ce_due THEN '' END AS problems
FROM ranked
ORDER BY family_id
"""


@dataclass(frozen=True)
class Assessment:
    """One family's decision at one as-of (a row of ``DUE_SQL``)."""

    family_id: str
    attached_on: date | None
    national_problems: int
    problems_at_attachment: list[int]
    indicators_at_attachment: int
    eligible: bool
    ssp_due: bool
    ssp_achieved_on: date | None
    ce_due: bool
    ce_achieved_on: date | None
    ce_person_ref: str | None
    ce_route: str | None
    blocking: list[str]
    later_indicators: list[str]
    claim_type: str | None
    achieved_on: date | None
    problems: str | None

    def reason(self) -> str:
        """Why this family is, or is not, due a claim: plain words for the audit pack."""
        if self.attached_on is None:
            return "Not eligible: the family has no attachment date."
        if not self.eligible:
            return (f"Not eligible: {self.national_problems} national headline problem(s) "
                    f"identified at attachment; at least {load_national().min_problems} "
                    "are needed.")
        if self.claim_type == "SSP":
            extra = (f" (CE also due on {self.ce_achieved_on}, later)" if self.ce_due else "")
            return (f"SSP due: every problem identified at attachment ({self.problems}) "
                    f"achieved and sustained; the last on {self.achieved_on}{extra}.")
        if self.claim_type == "CE":
            extra = (f" (SSP also due on {self.ssp_achieved_on}, later)" if self.ssp_due else "")
            return (f"CE due: adult {self.ce_person_ref} qualified for continuous employment "
                    f"({self.ce_route or 'route not recorded'}) on {self.achieved_on}{extra}.")
        blocking = ", ".join(self.blocking) or "no indicator identified at attachment"
        return (f"Eligible but no claim due: SSP blocked by {blocking}; "
                "no adult qualifies for continuous employment.")


def _table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
        "AND database_name = current_database()",
        [schema, name],
    ).fetchone()
    if row and row[0]:
        return True
    row = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ? "
        "AND database_name = current_database()",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def due_sql(con: duckdb.DuckDBPyConnection) -> str:
    """``DUE_SQL`` with any mart the warehouse lacks replaced by an empty stand-in."""
    sources = {
        key.split(".")[1]: (key if _table_exists(con, key) else empty)
        for key, empty in _EMPTY.items()
    }
    return DUE_SQL.format(**sources)


def due_parameters(plan: str, as_of: date, family_id: str | None = None) -> dict[str, object]:
    """The values ``DUE_SQL`` is run with: the run's, and the national rules'."""
    rules = load_national()
    return {"plan": plan, "as_of": as_of, "only_family": family_id,
            "national": list(rules.national_problems), "min_problems": rules.min_problems,
            "ssp_on_tie": rules.claim_ranking.on_tie == "SSP"}


def assess(con: duckdb.DuckDBPyConnection, plan: str, as_of: date,
           family_id: str | None = None) -> list[Assessment]:
    """Every family's (or one family's) eligibility and due claim at ``as_of``."""
    if not _table_exists(con, "marts.family_problems"):
        return []
    cur = con.execute(due_sql(con), due_parameters(plan, as_of, family_id))
    cols = [d[0] for d in cur.description]
    return [Assessment(**dict(zip(cols, row, strict=True))) for row in cur.fetchall()]
