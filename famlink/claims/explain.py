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

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from famlink.claims.eligibility import Assessment, _table_exists, assess
from famlink.claims.ledger import has_ledger
from famlink.claims.review import HELD, decisions_about, held_rows

Row = dict[str, Any]


@dataclass
class MemberAudit:
    """A family member and every source record linked to them."""

    person_ref: str
    details: Row
    records: list[Row] = field(default_factory=list)


@dataclass
class OutcomeAudit:
    """One outcome the plan's rule evaluated for an indicator, with its evidence."""

    outcome_id: str | None
    person_ref: str | None
    status: str | None
    achieved_on: date | None
    rule: str | None
    evidence: list[Row] = field(default_factory=list)


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


def _stored_assessment(con: duckdb.DuckDBPyConnection, family_id: str, plan: str,
                       as_of: date) -> tuple[Assessment | None, str | None]:
    if not _table_exists(con, "claims.assessments"):
        return None, None
    rows = _rows(
        con,
        """
        SELECT a.* EXCLUDE (run_id, decision), a.decision
        FROM claims.assessments AS a JOIN claims.runs AS r USING (run_id)
        WHERE a.family_id = ? AND r.plan = ? AND r.as_of = ?
        ORDER BY a.run_id LIMIT 1
        """,
        [family_id, plan, as_of],
    )
    if not rows:
        return None, None
    row = rows[0]
    decision = row.pop("decision")
    return Assessment(**row), decision


def _problems(con: duckdb.DuckDBPyConnection, family_id: str, plan: str | None,
              as_of: date | None, claim: Row | None, notes: list[str]) -> tuple[list[ProblemAudit],
                                                                                list[Row], str]:
    source = f"marts at as-of {as_of}" if as_of else "marts"
    frozen = (claim is not None and as_of == claim["as_of"]
              and _table_exists(con, "claims.claim_indicators"))
    if frozen:
        assert claim is not None
        cid = [claim["claim_id"]]
        inds = _rows(con, "SELECT * FROM claims.claim_indicators WHERE claim_id = ? "
                          "ORDER BY indicator", cid)
        outs = _rows(con, "SELECT * FROM claims.claim_outcomes WHERE claim_id = ? "
                          "ORDER BY indicator, outcome_id", cid)
        evid = _rows(con, """
            SELECT e.*, d.file, d.sha256, d.loaded_at
            FROM claims.claim_evidence AS e
            LEFT JOIN meta.deliveries AS d USING (delivery_id)
            WHERE e.claim_id = ? ORDER BY e.indicator, e.outcome_id, e.month, e.record_key
            """, cid) if _table_exists(con, "meta.deliveries") else _rows(
            con, "SELECT * FROM claims.claim_evidence WHERE claim_id = ?", cid)
        ce = _rows(con, "SELECT * FROM claims.claim_ce WHERE claim_id = ? ORDER BY person_ref",
                   cid)
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


def build_pack(con: duckdb.DuckDBPyConnection, family_id: str,
               as_of: date | None) -> FamilyAuditPack:
    """Assemble the audit pack from an open (read-only is enough) connection."""
    notes: list[str] = []
    claim: Row | None = None
    if has_ledger(con):
        found = _rows(con, "SELECT * FROM claims.ledger WHERE family_id = ?", [family_id])
        claim = found[0] if found else None
    plan, as_of = _pick_run(con, claim, as_of)
    if as_of is not None:
        con.execute("SET VARIABLE as_of = ?", [as_of])
        con.execute("SET VARIABLE as_of_month = ?", [as_of.strftime("%Y-%m")])

    fam = _safe_rows(con, "SELECT * FROM staging.cohort_families WHERE family_id = ?",
                     [family_id], notes, "cohort family")
    member_rows = _safe_rows(con, "SELECT * FROM staging.cohort_members WHERE family_id = ? "
                                  "ORDER BY person_ref", [family_id], notes, "cohort members")
    members: list[MemberAudit] = []
    for m in member_rows:
        records = _safe_rows(con, """
            SELECT rl.extract, rl.record_key, rl.record_id, rl.match_method,
                   rl.match_probability, rl.matched_to_record_id,
                   pr.first_name, pr.last_name, pr.dob, pr.sex, pr.postcode,
                   pr.upn, pr.nhs_number, pr.ni_number
            FROM linkage.record_links AS rl
            LEFT JOIN linkage.person_records AS pr ON pr.record_id = rl.record_id
            WHERE rl.person_ref = ?
            ORDER BY rl.extract, rl.record_key
            """, [m["person_ref"]], notes, f"linked records of {m['person_ref']}")
        members.append(MemberAudit(person_ref=m["person_ref"], details=m, records=records))
    households = _safe_rows(con, "SELECT * FROM linkage.household_links WHERE family_id = ? "
                                 "ORDER BY incident_ref", [family_id], notes, "household links")

    problems, ce, source = _problems(con, family_id, plan, as_of, claim, notes)
    if plan is not None and as_of is not None and _table_exists(con, "marts.unmatched_evidence"):
        for u in _safe_rows(con, "SELECT * FROM marts.unmatched_evidence WHERE family_id = ? "
                                 "AND plan = ? AND as_of = ? ORDER BY evidence_id",
                            [family_id, plan, as_of], notes, "unmatched evidence"):
            notes.append(f"practitioner evidence {u['evidence_id']} ({u['kind']}"
                         f"{', ' + repr(u['domain']) if u.get('domain') else ''}, from "
                         f"{_fmt(u.get('start_date'))}) supports no outcome: {u['reason']}")

    assessment: Assessment | None = None
    decision: str | None = None
    if plan is not None and as_of is not None:
        assessment, decision = _stored_assessment(con, family_id, plan, as_of)
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
                      + (f", problems {claim['problems']}" if claim["problems"] else ""))
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
    held, review_decisions = _held(con, family_id, plan, as_of, decision, members)
    if held:
        contradicted = ", ".join(sorted({f"{h['indicator']} ({h['pair_id']})" for h in held}))
        reason = (f"Held for review, not claimed: doubtful records would contradict "
                  f"{contradicted}; famlink review decide settles each pair. {reason}")
    return FamilyAuditPack(
        held=held, review_decisions=review_decisions,
        family_id=family_id, plan=plan, as_of=as_of,
        produced_at=datetime.now().replace(microsecond=0), source=source,
        family=fam[0] if fam else None, members=members, household_links=households,
        problems=problems, ce=ce, claim=claim, assessment=assessment,
        decision=decision or "no_evaluation", reason=reason, notes=notes,
    )


def _held(con: duckdb.DuckDBPyConnection, family_id: str, plan: str | None,
          as_of: date | None, decision: str | None,
          members: list[MemberAudit]) -> tuple[list[Row], list[Row]]:
    """A held family's pairs and the outcome each would contradict (at the run the
    pack explains), and every review decision taken on the family's members."""
    review_decisions = decisions_about(con, [m.person_ref for m in members])
    if decision != HELD or not _table_exists(con, "claims.assessments"):
        return [], review_decisions
    row = con.execute(
        "SELECT min(a.run_id) FROM claims.assessments AS a JOIN claims.runs AS r USING (run_id) "
        "WHERE a.family_id = ? AND r.plan = ? AND r.as_of = ?", [family_id, plan, as_of],
    ).fetchone()
    return (held_rows(con, row[0], family_id) if row and row[0] else []), review_decisions


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


def print_pack(pack: FamilyAuditPack, console: Console | None = None) -> None:
    """The audit pack in the terminal."""
    console = console or Console()
    colour = {"claimed": "green", "withdrawn": "red", "already_claimed": "yellow"}.get(
        pack.decision, "cyan")
    head = (f"plan {pack.plan or '?'} | as-of {_fmt(pack.as_of) or '?'} | "
            f"produced {_fmt(pack.produced_at)}")
    if pack.family:
        head += (f"\nattached {_fmt(pack.family.get('attached_on'))}, lead worker "
                 f"{_fmt(pack.family.get('lead_worker'))}, case closed "
                 f"{_fmt(pack.family.get('case_closed_on')) or 'open'}")
    console.print(Panel(head, title=f"Family {pack.family_id}", expand=False))
    console.print(Panel(pack.reason, title=f"Decision: {pack.decision}", style=colour,
                        expand=False))

    t = Table(title="Members", show_lines=False)
    for col in ("person_ref", "role", "name", "dob", "sex", "UPN", "NHS", "NI", "records"):
        t.add_column(col)
    for m in pack.members:
        d = m.details
        name = " ".join(_fmt(d.get(k)) for k in ("first_name", "middle_names", "last_name")
                        if d.get(k))
        t.add_row(m.person_ref, _fmt(d.get("role")), name, _fmt(d.get("dob")),
                  _fmt(d.get("sex")), _fmt(d.get("upn")), _fmt(d.get("nhs_number")),
                  _fmt(d.get("ni_number")), str(len(m.records)))
    console.print(t)
    for m in pack.members:
        if not m.records:
            continue
        t = Table(title=f"Records linked to {m.person_ref}")
        for col in ("extract", "record_key", "how linked", "name", "dob", "postcode"):
            t.add_column(col)
        for r in m.records:
            t.add_row(_fmt(r.get("extract")), _fmt(r.get("record_key")), _how(r),
                      f"{_fmt(r.get('first_name'))} {_fmt(r.get('last_name'))}".strip(),
                      _fmt(r.get("dob")), _fmt(r.get("postcode")))
        console.print(t)
    if pack.household_links:
        t = Table(title="Police incidents linked to the household")
        for col in ("incident_ref", "match_method", "address_from", "address_to"):
            t.add_column(col)
        for h in pack.household_links:
            t.add_row(*(_fmt(h.get(c)) for c in ("incident_ref", "match_method", "address_from",
                                                 "address_to")))
        console.print(t)

    t = Table(title=f"Problems ({pack.source})")
    for col in ("indicator", "problem", "person", "identified", "at attachment", "status",
                "achieved"):
        t.add_column(col)
    for p in pack.problems:
        t.add_row(p.indicator, _fmt(p.problem), _fmt(p.person_ref), _fmt(p.identified_on),
                  "yes" if p.at_attachment else "no (later)", p.status, _fmt(p.achieved_on))
    console.print(t)
    for p in pack.problems:
        for o in p.outcomes:
            title = (f"{p.indicator} outcome {o.outcome_id or '?'}: {o.status or '?'}"
                     f"{' on ' + _fmt(o.achieved_on) if o.achieved_on else ''}")
            console.print(f"[bold]{title}[/bold]  rule: {o.rule or '(not recorded)'}")
            if o.evidence:
                t = Table()
                for col in ("extract", "file", "delivery", "month", "record_key", "person",
                            "how linked", "detail"):
                    t.add_column(col)
                for e in o.evidence:
                    t.add_row(_fmt(e.get("extract")), _fmt(e.get("file")),
                              _fmt(e.get("delivery_id")), _fmt(e.get("month")),
                              _fmt(e.get("record_key")), _fmt(e.get("person_ref")), _how(e),
                              _fmt(e.get("detail")))
                console.print(t)
    if pack.ce:
        t = Table(title="Continuous employment")
        for col in ("person_ref", "route", "off_benefit_on", "qualifies_on", "status"):
            t.add_column(col)
        for c in pack.ce:
            t.add_row(*(_fmt(c.get(k)) for k in ("person_ref", "route", "off_benefit_on",
                                                 "qualifies_on", "status")))
        console.print(t)
    if pack.held:
        t = Table(title="Held for review: doubtful records and the outcome each would contradict")
        for col in ("pair", "member", "extract", "record_key", "p", "reason", "contradicts",
                    "if same", "decision"):
            t.add_column(col)
        for h in pack.held:
            t.add_row(*(_fmt(h.get(k)) for k in ("pair_id", "person_ref", "extract", "record_key",
                                                 "match_probability", "reason", "indicator",
                                                 "status_if_same", "decision")))
        console.print(t)
    if pack.review_decisions:
        t = Table(title="Review decisions")
        for col in ("pair", "member", "decision", "by", "at", "reason"):
            t.add_column(col)
        for r in pack.review_decisions:
            t.add_row(*(_fmt(r.get(k)) for k in ("pair_id", "person_ref", "decision",
                                                 "decided_by", "decided_at", "reason")))
        console.print(t)
    for note in pack.notes:
        console.print(f"[dim]note: {note}[/dim]")


def render_html(pack: FamilyAuditPack) -> str:
    """The audit pack as one self-contained HTML page (inline CSS, no scripts)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(Path(__file__).with_name("templates"))),
        autoescape=select_autoescape(["html"]),
    )
    env.filters["fmt"] = _fmt
    env.filters["how"] = _how
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
