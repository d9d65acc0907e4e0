"""``famlink explain``: the audit pack for one family.

Internal audit validates every claim and the national team spot-checks a
sample, so a claim must be explainable record by record: who is in the family,
which source records were linked to each member and how (identifier or
probabilistic, with the match probability), each problem identified with the
rule applied, its status and the evidence records (down to the extract
delivery), and why a claim was or was not made. The pack is printed with rich
and can be written as one self-contained HTML page (no external CSS or JS) to
attach to an audit file.

For a claimed family the evidence shown at the claim's as-of is the copy the
ledger froze when the claim was recorded, not the marts as later rebuilt.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table

from famlink.claims.eligibility import Assessment, _table_exists, assess
from famlink.claims.ledger import has_ledger
from famlink.claims.review import HELD, decisions_about, held_rows
from matchers.waterfall import STEP_COLUMNS, TABLE, pair_waterfall, waterfall_of
from rules.national import name_problems

Row = dict[str, Any]


class Scope(dict[str, str]):
    """What ``pack_scope`` read once for many packs: each relation -> the temp table
    holding the packs' slice of it; ``rows``: a pack query's rows for every family at
    once (query -> family, or claim -> its rows in the query's order); ``known``: what
    every pack of the run reads alike (which tables exist, the deliveries)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[Any, list[Row]]] = {}
        self.known: dict[str, Any] = {}


@dataclass
class MemberAudit:
    """A family member and every source record linked to them."""

    person_ref: str
    details: Row
    records: list[Row] = field(default_factory=list)


@dataclass
class RuleStep:
    """One node of an outcome line's rule tree: the plan's words, what was judged, the result."""

    rule_id: str
    depth: int                       # 0 for the line, 1 for its parts, ...
    words: str                       # the plan's words (rules/<plan>.yaml text)
    how: str                         # what the rule checks, from its parameters
    status: str | None = None
    achieved_on: date | None = None
    found: str | None = None         # the window judged and what was found there


@dataclass
class OutcomeAudit:
    """One outcome the plan's rule evaluated for an indicator, with its evidence."""

    outcome_id: str | None
    person_ref: str | None
    status: str | None
    achieved_on: date | None
    rule: str | None
    evidence: list[Row] = field(default_factory=list)
    reading: str | None = None       # the plan's words and the reading chosen
    steps: list[RuleStep] = field(default_factory=list)


@dataclass
class ProblemAudit:
    """One identified indicator: when, its status at the as-of, and the outcomes behind it."""

    indicator: str
    problem: int | None
    person_ref: str | None
    identified_on: date | None
    at_attachment: bool
    status: str
    achieved_on: date | None
    outcomes: list[OutcomeAudit] = field(default_factory=list)
    indicator_name: str | None = None    # the plan's words for the indicator
    problem_name: str | None = None      # the headline problem's name


@dataclass
class FamilyAuditPack:
    """Everything an auditor needs to check one family's claim (or its absence)."""

    family_id: str
    plan: str | None
    as_of: date | None
    produced_at: datetime
    source: str                      # where problems/evidence came from
    family: Row | None
    members: list[MemberAudit]
    household_links: list[Row]
    problems: list[ProblemAudit]
    ce: list[Row]
    claim: Row | None
    assessment: Assessment | None
    decision: str                    # claimed | withdrawn | already_claimed | not_due | ...
    reason: str
    notes: list[str] = field(default_factory=list)
    held: list[Row] = field(default_factory=list)          # doubtful pairs holding the claim
    review_decisions: list[Row] = field(default_factory=list)
    snapshot: Row | None = None      # claim_id, run_id, recorded_at of the copy shown
    changes: list[str] = field(default_factory=list)       # how the current data differ

    def as_dict(self) -> dict[str, Any]:
        """Plain data for templates and JSON."""
        return asdict(self)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[Row]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _safe_rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any],
               notes: list[str], what: str) -> list[Row]:
    """Rows, or none with a note: a missing table must not stop the audit pack."""
    try:
        return _rows(con, sql, params)
    except duckdb.Error as exc:
        notes.append(f"{what} not available: {str(exc).splitlines()[0]}")
        return []


def _preload(con: duckdb.DuckDBPyConnection, scope: Scope, query: str, sql: str,
              params: list[Any] | None = None) -> None:
    """``scope.rows[query]``: the rows of ``sql`` (one pack query for all the packs, its
    first column the family or claim they belong to) grouped by that column, in order.
    A query that fails is left out: each pack then runs it, and notes why, alone."""
    try:
        cur = con.execute(sql, params or [])
    except duckdb.Error:
        return
    cols = [d[0] for d in cur.description][1:]
    grouped: dict[Any, list[Row]] = {}
    for r in cur.fetchall():
        grouped.setdefault(r[0], []).append(dict(zip(cols, r[1:], strict=True)))
    scope.rows[query] = grouped


def _pack_rows(con: duckdb.DuckDBPyConnection, scope: Scope | None, query: str, key: Any,
               sql: str, params: list[Any], notes: list[str], what: str) -> list[Row]:
    """A pack query's rows: those ``pack_scope`` read for every pack, or its own."""
    if query in _preloaded(scope):
        return [dict(r) for r in _preloaded(scope)[query].get(key, [])]
    return _safe_rows(con, sql, params, notes, what)


def _values(scope: Scope | None) -> dict[str, Any]:
    return scope.known if isinstance(scope, Scope) else {}


def _preloaded(scope: Scope | None) -> dict[str, dict[Any, list[Row]]]:
    return scope.rows if isinstance(scope, Scope) else {}


def _once(scope: Scope | None, name: str, compute: Any) -> Any:
    """A value every pack of a run reads alike, computed once for the scope."""
    if not isinstance(scope, Scope):
        return compute()
    values = scope.known
    if name not in values:
        values[name] = compute()
    return values[name]


def _exists(con: duckdb.DuckDBPyConnection, scope: Scope | None, qualified: str) -> bool:
    return bool(_once(scope, f"exists {qualified}", lambda: _table_exists(con, qualified)))


def _pick_run(con: duckdb.DuckDBPyConnection, claim: Row | None,
              as_of: date | None) -> tuple[str | None, date | None]:
    """The plan and as-of to explain: the claim's, the given date's run, or the latest run."""
    if claim is not None and (as_of is None or as_of == claim["as_of"]):
        return claim["plan"], claim["as_of"]
    if _table_exists(con, "claims.runs"):
        sql = "SELECT plan, as_of FROM claims.runs"
        params: list[Any] = []
        if as_of is not None:
            sql += " WHERE as_of = ?"
            params = [as_of]
        row = con.execute(sql + " ORDER BY as_of DESC, run_id DESC LIMIT 1", params).fetchone()
        if row:
            return row[0], row[1]
    if claim is not None:
        return claim["plan"], as_of
    if _table_exists(con, "marts.problem_status"):
        sql = "SELECT plan, as_of FROM marts.problem_status"
        params = []
        if as_of is not None:
            sql += " WHERE as_of = ?"
            params = [as_of]
        row = con.execute(sql + " ORDER BY as_of DESC LIMIT 1", params).fetchone()
        if row:
            return row[0], row[1]
    return None, as_of


def _built_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    """The as-of of the run that built the warehouse (what its staging views show)."""
    if not _table_exists(con, "meta.run_parameters"):
        return None
    rows = con.execute("SELECT max(as_of) FROM meta.run_parameters").fetchall()
    return rows[0][0] if rows else None


def _stored_assessment(con: duckdb.DuckDBPyConnection, family_id: str, plan: str,
                       as_of: date, scope: Scope | None = None
                       ) -> tuple[Assessment | None, str | None]:
    if not _exists(con, scope, "claims.assessments"):
        return None, None
    if _values(scope).get("run") == (plan, as_of) and "assessment" in _preloaded(
            scope):
        rows = [dict(r) for r in scope.rows["assessment"].get(family_id, [])[:1]]
    else:
        rows = _rows(con, _assessment_sql(), [family_id, plan, as_of])
    if not rows:
        return None, None
    row = rows[0]
    decision = row.pop("decision")
    return Assessment(**row), decision


# What the ledger froze for a claim, one query per table: for one claim ({key} empty,
# {claims} "= ?") or for all the claims of a scope (the claim id first, then as for one).
_FROZEN_SQL = {
    "indicators": "SELECT {key}* FROM claims.claim_indicators WHERE claim_id {claims} "
                  "ORDER BY {by}indicator",
    "outcomes": "SELECT {key}* FROM claims.claim_outcomes WHERE claim_id {claims} "
                "ORDER BY {by}indicator, outcome_id",
    "evidence": """
        SELECT {key}e.*, d.file, d.sha256, d.loaded_at
        FROM claims.claim_evidence AS e
        LEFT JOIN meta.deliveries AS d USING (delivery_id)
        WHERE e.claim_id {claims} ORDER BY {by}e.indicator, e.outcome_id, e.month, e.record_key
        """,
    "evidence without deliveries": "SELECT {key}* FROM claims.claim_evidence "
                                   "WHERE claim_id {claims}{order}",
    "ce": "SELECT {key}* FROM claims.claim_ce WHERE claim_id {claims} ORDER BY {by}person_ref",
}
_PACK_CLAIMS = "IN (SELECT claim_id FROM _pack_claims)"


def _frozen_sql(query: str, claims: str = "= ?") -> str:
    bulk = claims != "= ?"
    return _FROZEN_SQL[query].format(key="claim_id AS _pack_key, " if bulk else "",
                                     claims=claims, by="claim_id, " if bulk else "",
                                     order=" ORDER BY claim_id" if bulk else "")


def _frozen_rows(con: duckdb.DuckDBPyConnection, scope: Scope | None, query: str,
                 claim_id: Any) -> list[Row]:
    if scope is not None and f"frozen {query}" in _preloaded(scope):
        return [dict(r) for r in scope.rows[f"frozen {query}"].get(claim_id, [])]
    return _rows(con, _frozen_sql(query), [claim_id])


def _problems(con: duckdb.DuckDBPyConnection, family_id: str, plan: str | None,
              as_of: date | None, claim: Row | None, notes: list[str],
              scope: Scope | None = None) -> tuple[list[ProblemAudit], list[Row], str]:
    source = f"marts at as-of {as_of}" if as_of else "marts"
    frozen = (claim is not None and as_of == claim["as_of"]
              and _exists(con, scope, "claims.claim_indicators"))
    if frozen:
        assert claim is not None
        cid = claim["claim_id"]
        inds = _frozen_rows(con, scope, "indicators", cid)
        outs = _frozen_rows(con, scope, "outcomes", cid)
        evid = _frozen_rows(con, scope, "evidence" if _exists(con, scope, "meta.deliveries")
                            else "evidence without deliveries", cid)
        ce = _frozen_rows(con, scope, "ce", cid)
        source = f"frozen by the ledger when claim {claim['claim_id']} was recorded"
        if not inds:
            frozen = False
    if not frozen:
        source = f"marts at as-of {as_of}" if as_of else "marts"
        inds = _safe_rows(con, """
            SELECT fp.*, s.status, s.achieved_on, CAST(s.outcome_id AS VARCHAR) AS outcome_id
            FROM marts.family_problems AS fp
            LEFT JOIN (SELECT * FROM marts.problem_status WHERE plan = ? AND as_of = ?) AS s
              ON s.family_id = fp.family_id AND trim(s.indicator) = trim(fp.indicator)
            WHERE fp.family_id = ? ORDER BY fp.indicator
            """, [plan, as_of, family_id], notes, "problems")
        outs = _safe_rows(con, """
            SELECT * FROM marts.outcomes WHERE family_id = ? AND plan = ? AND as_of = ?
            ORDER BY indicator, outcome_id
            """, [family_id, plan, as_of], notes, "outcomes")
        evid = _safe_rows(con, """
            SELECT e.*, d.file, d.sha256, d.loaded_at
            FROM marts.outcome_evidence AS e LEFT JOIN meta.deliveries AS d USING (delivery_id)
            WHERE e.family_id = ? AND e.plan = ? AND CAST(e.as_of AS DATE) = ?
            ORDER BY e.indicator, e.outcome_id, e.month, e.record_key
            """, [family_id, plan, as_of], notes, "evidence")
        ce = _safe_rows(con, """
            SELECT * FROM marts.ce_status WHERE family_id = ? AND plan = ? AND as_of = ?
            ORDER BY person_ref
            """, [family_id, plan, as_of], notes, "continuous employment status")

    if not frozen and inds and all(i.get("status") is None for i in inds):
        notes.append(f"the marts hold no outcome status for this family at as-of {as_of} "
                     "(they are rebuilt by each run); the decision shown is the one the run "
                     "recorded")
    problems: list[ProblemAudit] = []
    for ind in inds:
        code = str(ind["indicator"]).strip()
        attached, identified = ind.get("attached_on"), ind.get("identified_on")
        p = ProblemAudit(
            indicator=code,
            problem=ind.get("problem"),
            person_ref=ind.get("person_ref"),
            identified_on=identified,
            at_attachment=identified is None or attached is None or identified <= attached,
            status=ind.get("status") or "no_status",
            achieved_on=ind.get("achieved_on"),
        )
        for o in outs:
            if str(o["indicator"]).strip() != code:
                continue
            oid = None if o.get("outcome_id") is None else str(o["outcome_id"])
            p.outcomes.append(OutcomeAudit(
                outcome_id=oid, person_ref=o.get("person_ref"), status=o.get("status"),
                achieved_on=o.get("achieved_on"), rule=o.get("rule"),
                evidence=[e for e in evid if str(e["indicator"]).strip() == code
                          and (oid is None or str(e.get("outcome_id")) == oid)],
            ))
        if not p.outcomes:  # evidence without an outcome row still belongs to the indicator
            loose = [e for e in evid if str(e["indicator"]).strip() == code]
            if loose:
                p.outcomes.append(OutcomeAudit(None, None, None, None, None, loose))
        problems.append(p)
    return problems, ce, source


# ------------------------------------------------------------- the rules' reading

def _minus_months(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    m += 1
    last = [31, 29 if y % 4 == 0 and (y % 100 or y % 400 == 0) else 28, 31, 30, 31, 30, 31, 31,
            30, 31, 30, 31][m - 1]
    return date(y, m, min(d.day, last))


def _rule_extracts(rule: Any) -> list[str]:
    """The extracts a rule reads (for "deliveries to YYYY-MM")."""
    from rules.models import (
        EVENT_MEASURES,
        AttendanceRule,
        CountRule,
        EmploymentRule,
        EpisodeRule,
        EvidenceRule,
        FamilyStarRule,
        ScoreRule,
    )

    if isinstance(rule, CountRule):
        return sorted({EVENT_MEASURES[m] for m in rule.measures})
    if isinstance(rule, AttendanceRule):
        return ["school_attendance", "school_exclusions"]
    if isinstance(rule, EpisodeRule):
        return ["social_care_episodes"]
    if isinstance(rule, (EvidenceRule, FamilyStarRule)):
        return ["practitioner_evidence"]
    if isinstance(rule, ScoreRule):
        return ["yot_offences"]
    if isinstance(rule, EmploymentRule):
        return ["dwp_benefits", "dwp_employment"]
    return []


def _delivered_to(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, str]:
    """Extract -> the latest month delivered up to the as-of month."""
    if not _table_exists(con, "meta.deliveries"):
        return {}
    return dict(con.execute(
        "SELECT extract, max(month) FROM meta.deliveries WHERE month <= ? GROUP BY extract",
        [as_of.strftime("%Y-%m")]).fetchall())


def _deliveries_words(extracts: list[str], delivered: dict[str, str]) -> str:
    if not extracts:
        return ""
    months = {x: delivered.get(x) for x in extracts}
    if not any(months.values()):
        return f"no delivery of {', '.join(extracts)}"
    if len(set(months.values())) == 1:
        return f"deliveries to {next(iter(months.values()))}"
    return "deliveries: " + ", ".join(f"{x} {'to ' + m if m else 'never'}"
                                      for x, m in months.items())


def _term(index: str) -> str:
    """A term as the rules number it (academic year x 3 + term) -> 'autumn 2023/24'."""
    year, term = divmod(int(index), 3)
    return f"{('autumn', 'spring', 'summer')[term]} {year}/{(year + 1) % 100:02d}"


def _found(rule: Any, detail: str | None, attached: date | None, as_of: date,
           delivered: dict[str, str]) -> str | None:
    """The window a rule judged and what it found there, in words (from the run's detail)."""
    import re

    from rules.docs import measure_words
    from rules.models import AttendanceRule, CompositeRule, CountRule

    if isinstance(rule, CompositeRule):
        return None
    detail = (detail or "").strip()
    since = f"{_fmt(attached) or 'attachment'}..{as_of}"
    missing = ""
    if " missing delivery: " in detail:
        detail, gap = detail.split(" missing delivery: ", 1)
        missing = f"; missing delivery: {gap}"
    text = detail
    if isinstance(rule, CountRule):
        start = attached
        if rule.after_months:
            start = _minus_months(as_of, rule.after_months) + timedelta(days=1)
            if attached is not None and attached > start:
                start = attached
        m = re.search(r"before=(\S+) after=(\S+)", detail)
        after, before = (m.group(2), m.group(1)) if m else ("?", "?")
        prefix = detail[:m.start()].strip(" ;") if m else detail
        text = f"{after} {measure_words(rule.measures)} {_fmt(start) or '?'}..{as_of}"
        if rule.kind == "count_reduction":
            text += f" against {before} in the {rule.before_months} months before attachment"
        if prefix:
            text = f"{prefix}; {text}"
    elif isinstance(rule, AttendanceRule) and (m := re.match(
            r"terms (\d+)\.\.(\S+) worst attendance (\S+)", detail)):
        last = _term(m.group(2)) if m.group(2).isdigit() else "-"
        worst = m.group(3)
        worst = f"{float(worst):.1%}" if worst.replace(".", "", 1).isdigit() else worst
        text = f"terms {_term(m.group(1))}..{last}: worst attendance {worst}"
    elif detail.startswith("evidence rows="):
        n = detail.removeprefix("evidence rows=")
        text = f"{n} practitioner evidence record(s) that count, {since}"
    elif detail:
        text = f"{detail}, {since}"
    else:
        text = since
    words = _deliveries_words(_rule_extracts(rule), delivered)
    return text + missing + (f", {words}" if words else "")


def _load_plan(plan_name: str) -> Any:
    """The plan's rules, read again only when the file changes (a run snapshots every claim)."""
    from rules.engine import RULES_DIR

    path = RULES_DIR / f"{plan_name}.yaml"
    return _load_plan_at(plan_name, path.stat().st_mtime_ns if path.exists() else 0)


@cache
def _load_plan_at(plan_name: str, mtime_ns: int) -> Any:
    from rules.engine import load_plan

    return load_plan(plan_name)


def _judge(con: duckdb.DuckDBPyConnection, family_id: str, plan_name: str | None,
           as_of: date | None, attached: date | None, problems: list[ProblemAudit],
           notes: list[str], scope: Scope | None = None) -> None:
    """Each outcome's rule in the plan's words, with what every part judged and found.

    The findings (``intermediate.int_rules_results``) are the latest build's, so
    they are shown only when that build is this pack's plan and as-of.
    """
    from rules.docs import how_judged, plan_words, rule_tree
    from rules.models import RuleFileError
    from rules.national import problem_names

    if plan_name is None or as_of is None:
        return
    names = problem_names(plan_name)
    try:
        plan = _load_plan(plan_name)
    except RuleFileError as exc:
        notes.append(f"rule file not readable: {exc}")
        return
    results: dict[tuple[str, str], Row] = {}
    fresh = _once(scope, f"fresh {plan_name} {as_of}", lambda: (
        _table_exists(con, "intermediate.int_rules_results")
        and _table_exists(con, "marts.problem_status")
        and con.execute("SELECT count(*) FROM marts.problem_status WHERE plan = ? AND "
                        "as_of = ?", [plan_name, as_of]).fetchone()[0] > 0))
    if fresh:
        if scope is not None and "results" in _preloaded(scope):
            found = [dict(r) for r in scope.rows["results"].get(family_id, [])]
        else:
            found = _rows(con, "SELECT * FROM intermediate.int_rules_results "
                               "WHERE family_id = ?", [family_id])
        for r in found:
            results[(str(r["indicator"]).strip(), str(r["outcome_id"]))] = r
    delivered = _once(scope, f"delivered {as_of}", lambda: _delivered_to(con, as_of))
    known = {r.id for r in plan.rules}
    for p in problems:
        p.indicator_name = plan.indicators.get(p.indicator)
        p.problem_name = names.get(p.problem) if p.problem is not None else None
        for o in p.outcomes:
            if o.outcome_id not in known:
                continue
            o.reading = plan_words(plan.rule(o.outcome_id))
            for depth, rule in rule_tree(plan, o.outcome_id):
                res = results.get((p.indicator, rule.id))
                o.steps.append(RuleStep(
                    rule_id=rule.id, depth=depth, words=" ".join(rule.text.split()),
                    how=how_judged(rule),
                    status=res["status"] if res else (o.status if depth == 0 else None),
                    achieved_on=res["achieved_on"] if res else (
                        o.achieved_on if depth == 0 else None),
                    found=_found(rule, res.get("detail"), attached, as_of, delivered)
                    if res else None))
    if problems and not results:
        notes.append(f"what each rule found is kept only for the latest run's as-of (or in a "
                     f"claim's snapshot); at {as_of} the rules are shown without findings")


# ------------------------------------------------------------- event dates of records

def _event_query(extract: str, spec: Any) -> tuple[str, str, bool] | None:
    """How to read a staging extract's record key and event date: (key, event, whether the
    event needs the police incidents); None for an extract without an event date."""
    if extract.startswith("cohort_"):
        return None
    key = " || '|' || ".join(f"coalesce(CAST(x.{k} AS VARCHAR), '')" for k in spec.key)
    dated = [c for c, col in spec.columns.items()
             if col.type in ("date", "timestamp") and c != "dob"]
    if extract == "police_nominals":
        return key, "strftime(CAST(i.reported_at AS DATE), '%Y-%m-%d')", True
    if extract == "school_attendance":
        return key, "CAST(x.academic_year AS VARCHAR) || ' term ' || CAST(x.term AS VARCHAR)", False
    if not dated:
        return None
    first = f"strftime(CAST(x.{dated[0]} AS DATE), '%Y-%m-%d')"
    ends = [c for c in dated[1:] if c.startswith("end")]
    event = (f"{first} || '..' || coalesce(strftime(CAST(x.{ends[0]} AS DATE), "
             f"'%Y-%m-%d'), 'open')") if ends else first
    return key, event, False


def _extract_specs() -> dict[str, Any]:
    from famlink.contract import load_contract

    return {spec.name: spec for spec in load_contract().files.values()}


def _event_dates(con: duckdb.DuckDBPyConnection, records: list[Row],
                 scope: Scope | None = None) -> None:
    """Add each linked record's event date ('event') from its staging extract."""
    files = _extract_specs()
    by_extract: dict[str, list[Row]] = {}
    for r in records:
        by_extract.setdefault(str(r.get("extract")), []).append(r)
    for extract, rows in by_extract.items():
        spec = files.get(extract)
        query = _event_query(extract, spec) if spec is not None else None
        if query is None:
            continue
        key, event, incidents = query
        preloaded = _values(scope).get(f"events {extract}")
        if preloaded is not None:
            found = preloaded
        else:
            try:
                found = dict(con.execute(
                    _event_sql(extract, key, event, incidents, scope, "(SELECT unnest(?))"),
                    [[str(r.get("record_key")) for r in rows]]).fetchall())
            except duckdb.Error:
                continue
        for r in rows:
            r["event"] = found.get(str(r.get("record_key")))


def _event_sql(extract: str, key: str, event: str, incidents: bool, scope: Scope | None,
               keys: str) -> str:
    """Each record key of ``keys`` of a staging extract, with its event date."""
    # the incidents of the nominals (a slice apart from police_incidents' own records)
    incident_rel = (scope or {}).get(_NOMINAL_INCIDENTS, "staging.police_incidents")
    join = (f"LEFT JOIN (SELECT incident_ref, min(reported_at) AS reported_at FROM "
            f"{incident_rel} GROUP BY ALL) AS i "
            f"USING (incident_ref)") if incidents else ""
    return (f"SELECT {key} AS k, any_value({event}) FROM "
            f"{_rel(scope, 'staging.' + extract)} AS x {join} "
            f"WHERE {key} IN {keys} GROUP BY ALL")


# ------------------------------------------------------------- many packs at once

_NOMINAL_INCIDENTS = "staging.police_incidents of the nominals"


def _rel(scope: Scope | None, name: str) -> str:
    """The relation a pack reads for ``name``: the scope's slice of it, or itself."""
    return scope.get(name, name) if scope else name


def pack_scope(con: duckdb.DuckDBPyConnection, family_ids: list[str],
               plan: str | None = None, as_of: date | None = None) -> Scope:
    """Temp tables holding only these families' slice of the county-sized relations a pack
    reads (cohort rows, their members' links and records, the staging rows of those
    records), each made by one set-based query, so that a run snapshotting N claims
    scans the county once rather than N times. A relation that cannot be sliced (absent
    in this warehouse) is left out: the pack then reads it, and notes its absence, as
    it would alone. Each pack query is then run once for all the families (``rows``),
    those of a run's plan and as-of when they are given. Drop the tables with
    ``drop_pack_scope``."""
    scope = Scope()
    _slice(con, scope, family_ids)
    _preload_packs(con, scope, plan, as_of)
    return scope


def _slice(con: duckdb.DuckDBPyConnection, scope: Scope, family_ids: list[str]) -> None:
    """``pack_scope``'s temp tables: the families' slice of each county-sized relation."""

    def keep(name: str, temp: str, sql: str, params: list[Any] | None = None) -> bool:
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {temp} AS {sql}", params or [])
        except duckdb.Error:
            con.execute(f"DROP TABLE IF EXISTS {temp}")
            return False
        scope[name] = temp
        return True

    con.execute("CREATE OR REPLACE TEMP TABLE _pack_families AS "
                "SELECT DISTINCT unnest(CAST(? AS VARCHAR[])) AS family_id", [family_ids])
    scope["_pack_families"] = "_pack_families"
    fams = "(SELECT family_id FROM _pack_families)"
    keep("staging.cohort_families", "_pack_cohort_families",
         f"SELECT * FROM staging.cohort_families WHERE family_id IN {fams}")
    if not keep("staging.cohort_members", "_pack_cohort_members",
                f"SELECT * FROM staging.cohort_members WHERE family_id IN {fams}"):
        return
    if not keep("linkage.record_links", "_pack_record_links",
                "SELECT * FROM linkage.record_links WHERE person_ref IN "
                "(SELECT person_ref FROM _pack_cohort_members)"):
        return
    keep("linkage.person_records", "_pack_person_records",
         "SELECT * FROM linkage.person_records WHERE record_id IN "
         "(SELECT record_id FROM _pack_record_links)")
    files = _extract_specs()
    extracts = [r[0] for r in con.execute(
        "SELECT DISTINCT CAST(extract AS VARCHAR) FROM _pack_record_links ORDER BY 1").fetchall()]
    if keep("linkage.link_waterfall", "_pack_link_waterfall", f"""
         WITH p AS (SELECT DISTINCT record_id, matched_to_record_id FROM _pack_record_links
                    WHERE match_method = 'probabilistic' AND matched_to_record_id IS NOT NULL)
         SELECT w.* FROM {TABLE} AS w JOIN p
           ON w.record_id_l = p.record_id AND w.record_id_r = p.matched_to_record_id
         UNION
         SELECT w.* FROM {TABLE} AS w JOIN p
           ON w.record_id_l = p.matched_to_record_id AND w.record_id_r = p.record_id"""):
        steps: dict[tuple[str, str], list[tuple[Any, tuple[Any, ...]]]] = {}
        for left, right, step, *row in con.execute(
                f"SELECT record_id_l, record_id_r, step, {STEP_COLUMNS} "
                "FROM _pack_link_waterfall ORDER BY record_id_l, record_id_r, step").fetchall():
            steps.setdefault((str(left), str(right)), []).append((step, tuple(row)))
        scope.known["waterfall steps"] = steps
    keys = "(SELECT CAST(record_key AS VARCHAR) FROM _pack_record_links WHERE extract = ?)"
    for extract in extracts:
        spec = files.get(extract)
        query = _event_query(extract, spec) if spec is not None else None
        if query is None:
            continue
        key, event, incidents = query
        if keep(f"staging.{extract}", f"_pack_stg_{extract}",
                f"SELECT * FROM staging.{extract} AS x WHERE {key} IN {keys}",
                [extract]) and incidents:
            keep(_NOMINAL_INCIDENTS, "_pack_stg_nominal_incidents",
                 "SELECT * FROM staging.police_incidents WHERE incident_ref IN "
                 f"(SELECT incident_ref FROM _pack_stg_{extract})")
        try:  # every pack's event dates of this extract at once
            scope.known[f"events {extract}"] = dict(con.execute(
                _event_sql(extract, key, event, incidents, scope, keys), [extract]).fetchall())
        except duckdb.Error:
            continue


def _preload_packs(con: duckdb.DuckDBPyConnection, scope: Scope, plan: str | None,
                   as_of: date | None) -> None:
    """Every pack query run once for all the scope's families (``scope.rows``)."""
    fams = "IN (SELECT family_id FROM _pack_families)"
    if _exists(con, scope, "claims.events"):
        _preload(con, scope, "claim", "SELECT family_id, * FROM claims.ledger "
                                      f"WHERE family_id {fams}")
        con.execute("CREATE OR REPLACE TEMP TABLE _pack_claims AS SELECT claim_id "
                    f"FROM claims.ledger WHERE family_id {fams}")
        scope["_pack_claims"] = "_pack_claims"
        if _exists(con, scope, "claims.claim_indicators"):
            for query in _FROZEN_SQL:
                _preload(con, scope, f"frozen {query}", _frozen_sql(query, _PACK_CLAIMS))
    _preload(con, scope, "family", _family_sql(scope, fams))
    _preload(con, scope, "members", _members_sql(scope, fams))
    _preload(con, scope, "linked", _linked_sql(scope, fams))
    _preload(con, scope, "households", _households_sql(fams))
    if _exists(con, scope, "intermediate.int_rules_results"):
        _preload(con, scope, "results", "SELECT family_id, * FROM "
                                        f"intermediate.int_rules_results WHERE family_id {fams}")
    if plan is None or as_of is None:
        return
    scope.known["run"] = (plan, as_of)
    if _exists(con, scope, "marts.unmatched_evidence"):
        _preload(con, scope, "unmatched", _unmatched_sql(fams), [plan, as_of])
    if _exists(con, scope, "claims.assessments"):
        _preload(con, scope, "assessment", _assessment_sql(fams), [plan, as_of])


# A pack's queries, each written once: for one family (``families`` "= ?") or for
# every family of a scope (an IN list: the family first, then as for one).
ONE = "= ?"


def _keyed(families: str, column: str = "family_id") -> tuple[str, str]:
    """The leading key column and the ORDER BY prefix of a query for all the families."""
    return ("", "") if families == ONE else (f"{column} AS _pack_key, ", f"{column}, ")


def _family_sql(scope: Scope | None, families: str = ONE) -> str:
    key, _ = _keyed(families)
    return (f"SELECT {key}* FROM {_rel(scope, 'staging.cohort_families')} "
            f"WHERE family_id {families}")


def _members_sql(scope: Scope | None, families: str = ONE) -> str:
    key, by = _keyed(families)
    return (f"SELECT {key}* FROM {_rel(scope, 'staging.cohort_members')} "
            f"WHERE family_id {families} ORDER BY {by}person_ref")


def _linked_sql(scope: Scope | None, families: str | None = None) -> str:
    """The records linked to a family's members (``families`` None: to the person refs
    given as a list)."""
    columns = """rl.person_ref AS _member, rl.extract, rl.record_key, rl.record_id,
               rl.match_method, rl.match_probability, rl.matched_to_record_id,
               pr.first_name, pr.last_name, pr.dob, pr.sex, pr.postcode,
               pr.upn, pr.nhs_number, pr.ni_number"""
    records = f"""LEFT JOIN {_rel(scope, 'linkage.person_records')} AS pr
          ON pr.record_id = rl.record_id"""
    if families is None:
        return f"""
        SELECT {columns}
        FROM {_rel(scope, 'linkage.record_links')} AS rl
        {records}
        WHERE rl.person_ref IN (SELECT unnest(?))
        ORDER BY rl.extract, rl.record_key
        """
    return f"""
        SELECT m.family_id, {columns}
        FROM (SELECT DISTINCT family_id, person_ref FROM {_rel(scope, 'staging.cohort_members')}
              WHERE family_id {families}) AS m
        JOIN {_rel(scope, 'linkage.record_links')} AS rl ON rl.person_ref = m.person_ref
        {records}
        ORDER BY m.family_id, rl.extract, rl.record_key
        """


def _households_sql(families: str = ONE) -> str:
    key, by = _keyed(families)
    return (f"SELECT {key}* FROM linkage.household_links WHERE family_id {families} "
            f"ORDER BY {by}incident_ref")


def _unmatched_sql(families: str = ONE) -> str:
    key, by = _keyed(families)
    return (f"SELECT {key}* FROM marts.unmatched_evidence WHERE family_id {families} "
            f"AND plan = ? AND as_of = ? ORDER BY {by}evidence_id")


def _assessment_sql(families: str = ONE) -> str:
    key, by = _keyed(families, "a.family_id")
    return f"""
        SELECT {key}a.* EXCLUDE (run_id, decision), a.decision
        FROM claims.assessments AS a JOIN claims.runs AS r USING (run_id)
        WHERE a.family_id {families} AND r.plan = ? AND r.as_of = ?
        ORDER BY {by}a.run_id{' LIMIT 1' if families == ONE else ''}
        """


def _run_rows(con: duckdb.DuckDBPyConnection, scope: Scope | None, query: str,
              family_id: str, plan: str, as_of: date, sql: str, notes: list[str],
              what: str) -> list[Row]:
    """A pack query of one run's plan and as-of: preloaded when the scope is that run's."""
    if _values(scope).get("run") != (plan, as_of):
        return _safe_rows(con, sql, [family_id, plan, as_of], notes, what)
    return _pack_rows(con, scope, query, family_id, sql, [family_id, plan, as_of], notes, what)


def drop_pack_scope(con: duckdb.DuckDBPyConnection, scope: Scope) -> None:
    """Drop the temp tables ``pack_scope`` made."""
    for temp in scope.values():
        con.execute(f"DROP TABLE IF EXISTS {temp}")


def _waterfalls(con: duckdb.DuckDBPyConnection, records: list[Row],
                scope: Scope | None = None) -> None:
    """Add to each probabilistically linked record the waterfall of the pair that
    linked it ('waterfall': each comparison's level and match weight), when the
    linkage kept one (``linkage.link_waterfall``)."""
    steps = _values(scope).get("waterfall steps")
    for r in records:
        if r.get("match_method") == "probabilistic" and r.get("matched_to_record_id"):
            mine, other = str(r["record_id"]), str(r["matched_to_record_id"])
            if steps is None:
                wf = pair_waterfall(con, mine, other)
            else:  # both ways round, in step order, as pair_waterfall reads them
                pair = steps.get((mine, other), []) + (
                    steps.get((other, mine), []) if other != mine else [])
                wf = waterfall_of([row for _, row in sorted(pair, key=lambda s: s[0])], other)
            if wf is not None:
                r["waterfall"] = wf


def build_pack(con: duckdb.DuckDBPyConnection, family_id: str,
               as_of: date | None, *, use_snapshot: bool = True,
               scope: Scope | None = None) -> FamilyAuditPack:
    """Assemble the audit pack from an open (read-only is enough) connection.

    For a claim explained at its own as-of, the members, links, problems and
    findings shown are the snapshot taken when the claim was recorded
    (``use_snapshot``), with a note wherever the current data differ. ``scope``
    (from ``pack_scope``) reads the family's slice of the big relations instead of
    them; the pack is the same.
    """
    notes: list[str] = []
    claim: Row | None = None
    if _once(scope, "ledger", lambda: has_ledger(con)):
        found = _pack_rows(con, scope, "claim", family_id,
                           "SELECT * FROM claims.ledger WHERE family_id = ?", [family_id],
                           notes, "claim") if scope is not None else _rows(
            con, "SELECT * FROM claims.ledger WHERE family_id = ?", [family_id])
        claim = found[0] if found else None
    plan, as_of = _pick_run(con, claim, as_of)
    built = _once(scope, "built", lambda: _built_as_of(con))
    if as_of is not None and built is not None and built != as_of:
        notes.append(f"the cohort records shown are as at the latest run's as-of ({built}), "
                     f"not {as_of} (the staging views show the run that built the warehouse)")

    fam = _pack_rows(con, scope, "family", family_id, _family_sql(scope), [family_id], notes,
                     "cohort family")
    member_rows = _pack_rows(con, scope, "members", family_id, _members_sql(scope), [family_id],
                             notes, "cohort members")
    refs = [m["person_ref"] for m in member_rows]
    linked = _pack_rows(con, scope, "linked", family_id, _linked_sql(scope), [refs], notes,
                        "linked records") if refs else []
    _event_dates(con, linked, scope)
    _waterfalls(con, linked, scope)
    members = [MemberAudit(person_ref=m["person_ref"], details=m,
                           records=[{k: v for k, v in r.items() if k != "_member"}
                                    for r in linked if r["_member"] == m["person_ref"]])
               for m in member_rows]
    households = _pack_rows(con, scope, "households", family_id, _households_sql(),
                            [family_id], notes, "household links")

    problems, ce, source = _problems(con, family_id, plan, as_of, claim, notes, scope)
    _judge(con, family_id, plan, as_of, fam[0].get("attached_on") if fam else None, problems,
           notes, scope)
    if (plan is not None and as_of is not None
            and _exists(con, scope, "marts.unmatched_evidence")):
        for u in _run_rows(con, scope, "unmatched", family_id, plan, as_of, _unmatched_sql(),
                           notes, "unmatched evidence"):
            notes.append(f"practitioner evidence {u['evidence_id']} ({u['kind']}"
                         f"{', ' + repr(u['domain']) if u.get('domain') else ''}, from "
                         f"{_fmt(u.get('start_date'))}) supports no outcome: {u['reason']}")

    assessment: Assessment | None = None
    decision: str | None = None
    if plan is not None and as_of is not None:
        assessment, decision = _stored_assessment(con, family_id, plan, as_of, scope)
        if assessment is None:
            live = assess(con, plan, as_of, family_id)
            assessment = live[0] if live else None
            if assessment is not None:
                decision = ("claimed" if claim and claim["as_of"] == as_of else
                            "already_claimed" if claim else
                            "claim_due" if assessment.claim_type else
                            "not_due" if assessment.eligible else "not_eligible")
                notes.append("decision evaluated now from the marts (no run recorded it)")

    if assessment is not None:  # the rules' own reading of "at attachment" (grace included)
        for p in problems:
            p.at_attachment = p.indicator not in assessment.later_indicators
    reason = assessment.reason() if assessment else (
        "No outcome evaluation for this family"
        + (f" at {as_of}" if as_of else "") + ": no claim can be made without one.")
    if claim is not None:
        claim_text = (f"{claim['claim_type']} claim {claim['claim_id']} recorded by run "
                      f"{claim['run_id']} ({claim['plan']}, as-of {claim['as_of']}), achieved on "
                      f"{claim['achieved_on']}"
                      + (f", problems {claim['problems']} ("
                         f"{name_problems(claim['problems'], claim['plan'])})"
                         if claim["problems"] else ""))
        if claim["status"] == "withdrawn":
            decision = "withdrawn"
            reason = (f"{claim_text}; WITHDRAWN on {claim['withdrawn_at']} by "
                      f"{claim['withdrawn_by']}: {claim['withdrawn_reason']}. The family is "
                      "never claimed again.")
        elif claim["as_of"] == as_of:
            decision = "claimed"
            reason = f"Claimed: {claim_text}. {reason}"
        else:
            decision = "already_claimed"
            reason = f"Already claimed: {claim_text}. A family is claimed once only."
    held, review_decisions = _held(con, family_id, plan, as_of, decision, members, scope)
    if held:
        contradicted = ", ".join(sorted({f"{h['indicator']} ({h['pair_id']})" for h in held}))
        reason = (f"Held for review, not claimed: doubtful records would contradict "
                  f"{contradicted}; famlink review decide settles each pair. {reason}")
    pack = FamilyAuditPack(
        held=held, review_decisions=review_decisions,
        family_id=family_id, plan=plan, as_of=as_of,
        produced_at=datetime.now().replace(microsecond=0), source=source,
        family=fam[0] if fam else None, members=members, household_links=households,
        problems=problems, ce=ce, claim=claim, assessment=assessment,
        decision=decision or "no_evaluation", reason=reason, notes=notes,
    )
    if use_snapshot and claim is not None and claim["as_of"] == as_of:
        _use_snapshot(con, pack, claim)
    return pack


# ------------------------------------------------------------- the claim-time snapshot

def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return str(value)


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$datetime" in obj:
        return datetime.fromisoformat(obj["$datetime"])
    if len(obj) == 1 and "$date" in obj:
        return date.fromisoformat(obj["$date"])
    return obj


_SCALARS = frozenset({str, int, float, bool, type(None), date, datetime})


@cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """A dataclass's field names; None for any other type."""
    return tuple(f.name for f in fields(cls)) if hasattr(cls, "__dataclass_fields__") else None


def _plain(value: Any) -> Any:
    """``asdict`` without its deep copy of every value (the JSON is written at once):
    a run writes every claim's pack, and the copy cost more than building it."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_plain(v) for v in value]
    names = _field_names(kind)
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def pack_to_json(pack: FamilyAuditPack) -> str:
    """The pack as JSON, dates tagged so that they come back as dates."""
    return json.dumps(_plain(pack), default=_encode, sort_keys=True)


def _make(cls: Any, raw: dict[str, Any]) -> Any:
    """A dataclass from stored fields; a field another version added or dropped is ignored."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in raw.items() if k in known})


def pack_from_json(text: str) -> FamilyAuditPack:
    """A pack stored by ``pack_to_json`` (the claim-time snapshot)."""
    raw = json.loads(text, object_hook=_decode)
    raw["members"] = [_make(MemberAudit, m) for m in raw.get("members", [])]
    problems = []
    for p in raw.get("problems", []):
        outcomes = []
        for o in p.pop("outcomes", []):
            o["steps"] = [_make(RuleStep, st) for st in o.get("steps", [])]
            outcomes.append(_make(OutcomeAudit, o))
        problems.append(_make(ProblemAudit, {**p, "outcomes": outcomes}))
    raw["problems"] = problems
    if raw.get("assessment") is not None:
        raw["assessment"] = _make(Assessment, raw["assessment"])
    return _make(FamilyAuditPack, raw)


def _use_snapshot(con: duckdb.DuckDBPyConnection, pack: FamilyAuditPack, claim: Row) -> None:
    """Show what the claim rested on when it was recorded; note where today's data differ."""
    if not _table_exists(con, "claims.claim_snapshots"):
        return
    row = con.execute("SELECT run_id, recorded_at, pack FROM claims.claim_snapshots "
                      "WHERE claim_id = ?", [claim["claim_id"]]).fetchone()
    if row is None:
        return
    run_id, recorded_at, text = row
    then = pack_from_json(text)
    now = pack
    pack.changes = _differences(con, then, now)
    pack.snapshot = {"claim_id": claim["claim_id"], "run_id": run_id,
                     "recorded_at": recorded_at}
    pack.family, pack.members = then.family, then.members
    pack.household_links = then.household_links
    pack.problems, pack.ce, pack.assessment = then.problems, then.ce, then.assessment
    pack.source = (f"as recorded at claim time, run {run_id} ({_fmt(recorded_at)}), "
                   f"claim {claim['claim_id']}")
    pack.notes = [*then.notes, *(n for n in now.notes if n not in then.notes
                                 and n.startswith(("practitioner evidence",)))]
    if pack.changes:
        pack.notes.append("the current data differ from the claim-time record: "
                          + "; ".join(pack.changes))
    else:
        pack.notes.append("the current linkage and latest outcomes agree with the "
                          "claim-time record")


def _differences(con: duckdb.DuckDBPyConnection, then: FamilyAuditPack,
                 now: FamilyAuditPack) -> list[str]:
    """How the linkage now and the latest run's statuses differ from the snapshot."""
    out: list[str] = []
    was = {m.person_ref: {(r.get("extract"), r.get("record_key")) for r in m.records}
           for m in then.members}
    is_ = {m.person_ref: {(r.get("extract"), r.get("record_key")) for r in m.records}
           for m in now.members}
    for ref in sorted(set(was) | set(is_)):
        if ref not in is_:
            out.append(f"member {ref} is no longer in the cohort")
            continue
        if ref not in was:
            out.append(f"member {ref} joined the cohort after the claim")
            continue
        added, gone = sorted(is_[ref] - was[ref]), sorted(was[ref] - is_[ref])
        if added:
            out.append(f"{ref} now also linked to " + ", ".join(f"{x}:{k}" for x, k in added))
        if gone:
            out.append(f"{ref} no longer linked to " + ", ".join(f"{x}:{k}" for x, k in gone))
    h_was = {h.get("incident_ref") for h in then.household_links}
    h_now = {h.get("incident_ref") for h in now.household_links}
    if h_was != h_now:
        out.append(f"household incidents now {len(h_now)} (were {len(h_was)})")
    if _table_exists(con, "marts.problem_status"):
        latest = con.execute("SELECT plan, max(as_of) FROM marts.problem_status "
                             "GROUP BY plan ORDER BY 2 DESC LIMIT 1").fetchone()
        if latest:
            current = dict(con.execute(
                "SELECT trim(indicator), status FROM marts.problem_status WHERE family_id = ? "
                "AND plan = ? AND as_of = ?", [then.family_id, latest[0], latest[1]]).fetchall())
            for p in then.problems:
                status = current.get(p.indicator)
                if status is not None and status != p.status:
                    out.append(f"{p.indicator} is {status} at the latest run ({latest[0]}, "
                               f"as-of {latest[1]}); it was {p.status} when claimed")
    return out


def _held(con: duckdb.DuckDBPyConnection, family_id: str, plan: str | None,
          as_of: date | None, decision: str | None, members: list[MemberAudit],
          scope: Scope | None = None) -> tuple[list[Row], list[Row]]:
    """A held family's pairs and the outcome each would contradict (at the run the
    pack explains), and every review decision taken on the family's members."""
    undecided = scope is not None and _once(scope, "no decisions", lambda: (
        not _table_exists(con, "review.decisions")
        or not con.execute("SELECT count(*) FROM review.decisions").fetchone()[0]))
    review_decisions = [] if undecided else decisions_about(
        con, [m.person_ref for m in members])
    if decision != HELD or not _exists(con, scope, "claims.assessments"):
        return [], review_decisions
    row = con.execute(
        "SELECT min(a.run_id) FROM claims.assessments AS a JOIN claims.runs AS r USING (run_id) "
        "WHERE a.family_id = ? AND r.plan = ? AND r.as_of = ?", [family_id, plan, as_of],
    ).fetchone()
    held = held_rows(con, row[0], family_id) if row and row[0] else []
    _doubtful_waterfalls(con, held)
    return held, review_decisions


def _doubtful_waterfalls(con: duckdb.DuckDBPyConnection, held: list[Row]) -> None:
    """Add to the first row of each held pair the waterfall of its strongest scored
    pair in the current linkage (the member's record against the doubtful person's)."""
    if not held or not _table_exists(con, "linkage.link_waterfall"):
        return
    seen: set[str] = set()
    for h in held:
        if h.get("pair_id") in seen:
            continue
        seen.add(str(h.get("pair_id")))
        found = con.execute(
            """WITH other AS (SELECT person_id FROM linkage.record_links
                              WHERE extract = ? AND record_key = ?)
               SELECT w.record_id_l, w.record_id_r, a.person_ref IS NOT NULL
               FROM linkage.link_waterfall AS w
               JOIN linkage.record_links AS a ON a.record_id = w.record_id_l
               JOIN linkage.record_links AS b ON b.record_id = w.record_id_r
               WHERE w.kept_as = 'doubtful' AND w.step = 0
                 AND ((a.person_ref = ? AND b.person_id IN (SELECT person_id FROM other))
                   OR (b.person_ref = ? AND a.person_id IN (SELECT person_id FROM other)))
               ORDER BY w.record_id_l, w.record_id_r""",
            [h.get("extract"), h.get("record_key"), h.get("person_ref"), h.get("person_ref")],
        ).fetchall()
        best = None
        for left, right, member_left in found:
            member, other = (left, right) if member_left else (right, left)
            wf = pair_waterfall(con, other, member)
            if wf is not None and (best is None or wf["match_weight"] > best["match_weight"]):
                best = {**wf, "record_id": other}
        if best is not None:
            h["waterfall"] = best


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    return str(v)


def _how(rec: Row) -> str:
    method = rec.get("match_method") or "?"
    prob = rec.get("match_probability")
    return method if prob is None else f"{method} (p={prob:.3f})"


def _table(title: str | None = None, **kw: Any) -> Table:
    return Table(title=title, title_justify="left", show_lines=True, **kw)


def _ids(t: Table, *names: str) -> None:
    """Columns that hold ids: never wrapped, never cut."""
    for name in names:
        t.add_column(name, no_wrap=True, overflow="ignore")


def _words(t: Table, *names: str) -> None:
    """Columns of words: wrapped to fit (a long word folds rather than being cut)."""
    for name in names:
        t.add_column(name, overflow="fold")


def _problem_label(p: ProblemAudit) -> str:
    label = p.indicator + (f" {p.indicator_name}" if p.indicator_name else "")
    if p.problem is not None:
        label += f"\n(problem {p.problem}" + (f" {p.problem_name}" if p.problem_name else "") + ")"
    return label


def _step_text(st: RuleStep) -> str:
    """One rule-tree node as a sentence: what it asks, the result, what was found."""
    result = (f"{st.status or 'not judged'}"
              + (f" on {_fmt(st.achieved_on)}" if st.achieved_on else ""))
    asks = st.how if st.depth == 0 else f"{st.words}: {st.how}"
    return (f"- {st.rule_id}: {asks}. [italic]{result}[/italic]"
            + (f"; found {st.found}" if st.found else ""))


def _bar(weight: float) -> str:
    """A step's weight as a text bar, one block per bit (at most 12), green for
    evidence for the link and red against."""
    n = min(round(abs(weight)), 12)
    if n == 0:
        return ""
    return f"[green]{'█' * n}[/green]" if weight > 0 else f"[red]{'▒' * n}[/red]"


def _waterfall_table(rec: Row, member: str) -> Table:
    """Why a probabilistically linked record is the member: the prior, each
    comparison's level and match weight, the running total, and the final score."""
    wf = rec["waterfall"]
    t = Table(title=f"Why {_fmt(rec.get('extract'))}:{_fmt(rec.get('record_key'))} is "
                    f"{member}: its pair with {_fmt(wf.get('matched_to_record_id'))}",
              title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    _ids(t, "comparison")
    _words(t, "level")
    for name in ("weight", "total"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("", no_wrap=True, overflow="ignore")
    for st in wf.get("steps", []):
        w = float(st.get("match_weight") or 0.0)
        level = _fmt(st.get("label"))
        tf = st.get("tf_adjustment")
        if tf:
            level += f" (incl. term frequency {tf:+.2f})"
        t.add_row(_fmt(st.get("comparison")), level, f"{w:+.2f}",
                  f"{float(st.get('running_weight') or 0.0):+.2f}", _bar(w))
    final = float(wf.get("match_weight") or 0.0)
    t.add_row("final", f"match probability {float(wf.get('match_probability') or 0):.6f}",
              "", f"{final:+.2f}", "", style="bold")
    return t


def print_pack(pack: FamilyAuditPack, console: Console | None = None) -> None:
    """The audit pack in the terminal; fits 100 columns with every id whole."""
    console = console or Console()
    colour = {"claimed": "green", "withdrawn": "red", "already_claimed": "yellow"}.get(
        pack.decision, "cyan")
    head = (f"plan {pack.plan or '?'} | as-of {_fmt(pack.as_of) or '?'} | "
            f"produced {_fmt(pack.produced_at)}\nproblems and evidence: {pack.source}")
    if pack.family:
        head += (f"\nattached {_fmt(pack.family.get('attached_on'))}, lead worker "
                 f"{_fmt(pack.family.get('lead_worker'))}, case closed "
                 f"{_fmt(pack.family.get('case_closed_on')) or 'open'}")
    console.print(Panel(head, title=f"Family {pack.family_id}", expand=False))
    console.print(Panel(pack.reason, title=f"Decision: {pack.decision}", style=colour,
                        expand=False))

    t = _table("Members")
    _ids(t, "person_ref")
    _words(t, "role", "name")
    _ids(t, "dob", "sex", "identifiers")
    t.add_column("records", justify="right")
    for m in pack.members:
        d = m.details
        name = " ".join(_fmt(d.get(k)) for k in ("first_name", "middle_names", "last_name")
                        if d.get(k))
        ids = "\n".join(f"{label} {d[k]}" for k, label in (("upn", "UPN"), ("nhs_number", "NHS"),
                                                            ("ni_number", "NI")) if d.get(k))
        t.add_row(m.person_ref, _fmt(d.get("role")), name, _fmt(d.get("dob")),
                  _fmt(d.get("sex")), ids, str(len(m.records)))
    console.print(t)
    for m in pack.members:
        if not m.records:
            continue
        t = _table(f"Records linked to {m.person_ref}")
        _ids(t, "extract / record_key", "event date")
        _words(t, "how linked")
        t.add_column("on the record", overflow="fold", min_width=10)
        for r in m.records:
            who = "\n".join(x for x in (
                f"{_fmt(r.get('first_name'))} {_fmt(r.get('last_name'))}".strip(),
                _fmt(r.get("dob")), _fmt(r.get("postcode"))) if x)
            t.add_row(f"{_fmt(r.get('extract'))}\n{_fmt(r.get('record_key'))}",
                      _fmt(r.get("event")), _how(r), who)
        console.print(t)
        for r in m.records:
            if r.get("waterfall"):
                console.print(_waterfall_table(r, m.person_ref))
    if pack.household_links:
        t = _table("Police incidents linked to the household")
        _ids(t, "incident_ref")
        _words(t, "match_method", "address_from", "address_to")
        for h in pack.household_links:
            t.add_row(*(_fmt(h.get(c)) for c in ("incident_ref", "match_method", "address_from",
                                                 "address_to")))
        console.print(t)

    t = _table(f"Problems ({pack.source})")
    _words(t, "indicator (problem)")
    _ids(t, "person", "identified")
    _words(t, "at attachment", "status")
    _ids(t, "achieved")
    for p in pack.problems:
        t.add_row(_problem_label(p), _fmt(p.person_ref), _fmt(p.identified_on),
                  "yes" if p.at_attachment else "no (later)", p.status, _fmt(p.achieved_on))
    console.print(t)
    for p in pack.problems:
        for o in p.outcomes:
            title = (f"{p.indicator} outcome line {o.outcome_id or '?'}: {o.status or '?'}"
                     f"{' on ' + _fmt(o.achieved_on) if o.achieved_on else ''}")
            console.print(f"\n[bold]{title}[/bold]")
            console.print(f"The plan: {o.reading or o.rule or '(not recorded)'}")
            for st in o.steps:
                console.print(Padding(_step_text(st), (0, 0, 0, 2 * st.depth + 2)))
            if o.evidence:
                t = _table()
                _ids(t, "source", "record_key", "person")
                _words(t, "how linked", "detail")
                for e in o.evidence:
                    source = (f"{_fmt(e.get('extract'))}\n{_fmt(e.get('file'))}\n"
                              f"delivery {_fmt(e.get('delivery_id'))} ({_fmt(e.get('month'))})")
                    t.add_row(source, _fmt(e.get("record_key")), _fmt(e.get("person_ref")),
                              _how(e), _fmt(e.get("detail")))
                console.print(t)
    if pack.ce:
        t = _table("Continuous employment")
        _ids(t, "person_ref")
        _words(t, "route")
        _ids(t, "off_benefit_on", "qualifies_on")
        _words(t, "status")
        for c in pack.ce:
            t.add_row(*(_fmt(c.get(k)) for k in ("person_ref", "route", "off_benefit_on",
                                                 "qualifies_on", "status")))
        console.print(t)
    if pack.held:
        t = _table("Held for review: doubtful records and the outcome each would contradict")
        _ids(t, "pair", "member", "record")
        _words(t, "p", "reason", "contradicts", "decision")
        for h in pack.held:
            t.add_row(_fmt(h.get("pair_id")), _fmt(h.get("person_ref")),
                      f"{_fmt(h.get('extract'))}\n{_fmt(h.get('record_key'))}",
                      _fmt(h.get("match_probability")), _fmt(h.get("reason")),
                      f"{_fmt(h.get('indicator'))} (if same: {_fmt(h.get('status_if_same'))})",
                      _fmt(h.get("decision")))
        console.print(t)
        for h in pack.held:
            if h.get("waterfall"):
                rec = {"extract": h["waterfall"]["record_id"].split(":", 1)[0],
                       "record_key": h["waterfall"]["record_id"].split(":", 1)[-1],
                       "waterfall": h["waterfall"]}
                console.print(_waterfall_table(rec, f"{h.get('person_ref')}? (pair "
                                                    f"{h.get('pair_id')})"))
    if pack.review_decisions:
        t = _table("Review decisions")
        _ids(t, "pair", "member")
        _words(t, "decision", "by", "at", "reason")
        for r in pack.review_decisions:
            t.add_row(*(_fmt(r.get(k)) for k in ("pair_id", "person_ref", "decision",
                                                 "decided_by", "decided_at", "reason")))
        console.print(t)
    for note in pack.notes:
        console.print(f"[dim]note: {note}[/dim]")


# The HTML waterfall's layout (px): level names, then the bars, then each weight.
_WF_LABEL_W, _WF_CHART_W, _WF_ROW, _WF_FILL = 380, 300, 20, {
    "prior": "#2b6cb0", "for": "#2f855a", "against": "#c53030", "none": "#a0aec0",
    "final": "#1a365d"}


def waterfall_chart(wf: Row) -> Row:
    """Geometry of one waterfall as inline SVG bars (the template writes the
    elements; every text goes through its escaping): each step's bar runs from
    the total before it to the total after it, the final bar from 0."""
    steps = wf.get("steps") or []
    final = float(wf.get("match_weight") or 0.0)
    spans = []
    for st in steps:
        w, run = float(st.get("match_weight") or 0.0), float(st.get("running_weight") or 0.0)
        spans.append((run - w, run, w, st))
    ends = [0.0, final, *(v for a, b, _, _ in spans for v in (a, b))]
    lo, hi = min(ends), max(ends)
    hi = max(hi, lo + 1.0)

    def x(v: float) -> float:
        return round(_WF_LABEL_W + (v - lo) / (hi - lo) * _WF_CHART_W, 1)

    rows = []
    for i, (a, b, w, st) in enumerate(spans):
        kind = "prior" if i == 0 and st.get("comparison") == "prior" else (
            "for" if w > 0 else "against" if w < 0 else "none")
        tf = st.get("tf_adjustment")
        label = f"{_fmt(st.get('comparison'))}: {_fmt(st.get('label'))}"
        rows.append({"y": 24 + i * _WF_ROW, "x": x(min(a, b)),
                     "w": max(round(abs(x(b) - x(a)), 1), 1.0), "fill": _WF_FILL[kind],
                     "label": label, "value": f"{w:+.2f}",
                     "title": label + (f" (incl. term frequency {tf:+.2f})" if tf else "")
                     + f": {w:+.2f}, total {b:+.2f}"})
    rows.append({"y": 24 + len(spans) * _WF_ROW, "x": x(min(0.0, final)),
                 "w": max(round(abs(x(final) - x(0.0)), 1), 1.0), "fill": _WF_FILL["final"],
                 "label": "final match weight", "value": f"{final:+.2f}",
                 "title": f"final match weight {final:+.2f}, match probability "
                          f"{float(wf.get('match_probability') or 0):.6f}"})
    return {"width": _WF_LABEL_W + _WF_CHART_W + 70, "height": 30 + len(rows) * _WF_ROW,
            "zero": x(0.0), "value_x": _WF_LABEL_W + _WF_CHART_W + 8,
            "label_x": _WF_LABEL_W - 8, "rows": rows, "final": f"{final:+.2f}",
            "probability": f"{float(wf.get('match_probability') or 0):.6f}"}


def render_html(pack: FamilyAuditPack) -> str:
    """The audit pack as one self-contained HTML page (inline CSS, no scripts)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(Path(__file__).with_name("templates"))),
        autoescape=select_autoescape(["html"]),
    )
    env.filters["fmt"] = _fmt
    env.filters["how"] = _how
    env.filters["waterfall_chart"] = waterfall_chart
    env.filters["named"] = lambda problems, plan: name_problems(
        ";".join(str(x) for x in problems) if isinstance(problems, list) else problems, plan)
    return env.get_template("explain.html").render(pack=pack)


def explain_family(warehouse: Path, family_id: str, as_of: date | None,
                   html_out: Path | None, *, console: Console | None = None,
                   quiet: bool = False) -> FamilyAuditPack:
    """``famlink explain``: print the family's audit pack; write it as HTML if asked.

    Opens the warehouse read-only: explaining a claim never changes the ledger.
    """
    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        pack = build_pack(con, family_id, as_of)
    finally:
        con.close()
    if not quiet:
        print_pack(pack, console)
    if html_out is not None:
        html_out = Path(html_out)
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(render_html(pack), encoding="utf-8")
    return pack
