"""Compile a plan's outcome rules to models of the graph over the measures and run them.

The measures are SQL models in ``transforms/intermediate`` (one per file);
each rule kind is one SQL template in ``rules/sql``, run as written with the
rule's values bound to its ``$parameters`` (no SQL text comes from the plan);
the marts in ``transforms/marts`` collapse the per-rule results. Everything runs inside
DuckDB, so a cohort of thousands of families is a handful of set-based
queries, and the same inputs and as-of date always give the same tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

import duckdb
import yaml

from famlink.ingest.reading import FatalExtractError
from famlink.models import (
    RUN_PARAMETERS,
    TRANSFORMS_DIR,
    ModelFileFault,
    ModelGraph,
    ModelGraphError,
    model_graph,
    references,
    sql_model,
    write_run_parameters,
    written_model,
)
from rules.models import (
    EVENT_MEASURES,
    AttendanceRule,
    CeRoute,
    CeSpec,
    CompositeRule,
    CountRule,
    EmploymentRule,
    EpisodeRule,
    EvidenceRule,
    FamilyStarRule,
    Plan,
    Rule,
    RuleFileError,
    ScoreRule,
    parse_plan,
)
from rules.national import load_national
from rules.vocabulary import (
    NORMALISE_SQL,
    VOCABULARY_PATH,
    Vocabulary,
    check_against_plan,
    load_vocabulary,
)

RULES_DIR = Path(__file__).resolve().parent
SQL_DIR = RULES_DIR / "sql"
Con = duckdb.DuckDBPyConnection

STATUSES = ("achieved", "not_achieved", "not_yet_sustained", "insufficient_data")

_RESULT_COLUMNS = (
    "outcome_id VARCHAR, family_id VARCHAR, indicator VARCHAR, status VARCHAR, "
    "achieved_on DATE, detail VARCHAR"
)
_EVIDENCE_COLUMNS = (
    "outcome_id VARCHAR, family_id VARCHAR, indicator VARCHAR, extract VARCHAR, "
    "delivery_id BIGINT, month VARCHAR, record_key VARCHAR, person_ref VARCHAR, "
    "match_method VARCHAR, match_probability DOUBLE, detail VARCHAR"
)


class RuleFileFault(FatalExtractError, RuleFileError):
    """A rule or vocabulary file that does not load, met by a run: like a fatal
    extract fault, the run stops with one line naming the file and the entry, and
    the published warehouse is left exactly as it was."""


@dataclass
class OutcomeSummary:
    """Counts from one evaluation, for the run summary."""

    plan: str
    as_of: date
    families: int = 0
    problems: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    problem_status: dict[str, int] = field(default_factory=dict)
    ce_status: dict[str, int] = field(default_factory=dict)
    unmatched_evidence: int = 0


@cache
def load_plan(plan_name: str) -> Plan:
    """Load and validate ``rules/<plan_name>.yaml`` (errors name file and rule)."""
    path = RULES_DIR / f"{plan_name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in RULES_DIR.glob("*.yaml"))
        raise RuleFileError(f"{path}: no rule file for plan {plan_name!r} (known: {known})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RuleFileError(f"{path}: not valid YAML: {exc}") from None
    plan = parse_plan(raw, str(path))
    if plan.plan != plan_name:
        raise RuleFileError(f"{path}: plan is {plan.plan!r}, expected {plan_name!r}")
    return plan


def check_rule_files(plan_name: str,
                     vocabulary: Path = VOCABULARY_PATH) -> tuple[Plan, Vocabulary]:
    """Load and cross-check the plan, the vocabulary and the national rules.

    Called before anything is built, so a bad file stops the run with one line
    naming the file and the entry.
    """
    plan = load_plan(plan_name)
    vocab = load_vocabulary(vocabulary)
    check_against_plan(vocab, plan_name, plan_codes(plan), str(vocabulary))
    load_national()
    return plan, vocab


def plan_codes(plan: Plan) -> set[str]:
    """The codes an outcome_code may carry under this plan: indicators and line ids."""
    return {c.upper() for c in plan.indicators} | {r.id.upper() for r in plan.rules}


def evaluate_outcomes(
    con: duckdb.DuckDBPyConnection, plan_name: str, as_of: date,
    vocabulary: Path = VOCABULARY_PATH,
) -> OutcomeSummary:
    """Build the measures and the outcome marts for a plan as at a date."""
    plan, vocab = _checked_rule_files(plan_name, vocabulary)
    con.execute("CREATE SCHEMA IF NOT EXISTS intermediate")
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(NORMALISE_SQL)
    con.execute(_scopes_sql())
    try:
        graph = plan_graph(plan)
    except ModelGraphError as exc:
        raise ModelFileFault.of(exc) from None
    steps = _steps(plan, vocab, as_of)
    for model in graph.order(BUILT_LAYERS):
        step = steps.get(model.name)
        if step is not None:
            step(con)
        elif model.sql is not None:
            schema, _, name = model.name.partition(".")
            _build(con, schema, name, model.sql)
        else:  # pragma: no cover - every written model has a step
            raise RuntimeError(f"model {model.name}: nothing builds it")
    return _summary(con, plan_name, as_of)


def _checked_rule_files(plan_name: str, vocabulary: Path) -> tuple[Plan, Vocabulary]:
    """check_rule_files, a bad file met by a run stopping it in one line."""
    try:
        return check_rule_files(plan_name, vocabulary)
    except RuleFileError as exc:
        path, _, fault = str(exc).partition(": ")
        raise RuleFileFault(Path(path), fault) from None


def record_run_parameters(con: Con, plan_name: str, as_of: date,
                          vocabulary: Path = VOCABULARY_PATH) -> None:
    """The run's row of meta.run_parameters, written before staging is built (the
    staging views read the as-of month from it) and again by the outcome build."""
    plan, _ = _checked_rule_files(plan_name, vocabulary)
    _write_parameters(con, plan, as_of)


def _write_parameters(con: Con, plan: Plan, as_of: date) -> None:
    write_run_parameters(
        con, plan=plan.plan, as_of=as_of,
        identification_grace_days=plan.identification_grace_days,
        plan_codes=plan_codes(plan),
        out_of_work_benefits=plan.ce.out_of_work_benefits,
        out_of_work_uc_regimes=plan.ce.out_of_work_uc_regimes,
        snapshot_extracts=[s.name for s in _contract_files() if s.delivery == "snapshot"])


def _write_vocabulary(con: duckdb.DuckDBPyConnection, plan: Plan, vocab: Vocabulary) -> None:
    """The vocabulary as a table, with what each name evidences under this plan."""
    con.execute(NORMALISE_SQL)
    con.execute(
        "CREATE OR REPLACE TABLE intermediate.int_rules_vocabulary (entry VARCHAR, "
        "kind VARCHAR, name VARCHAR, exact BOOLEAN, star_domain INTEGER, targets VARCHAR[])"
    )
    inds = list(plan.indicators)
    rows: list[tuple[object, ...]] = []
    for d in vocab.family_star:
        rows += [(f"family_star.{d.number}", "family_star", n, False, d.number, None)
                 for n in d.names]
    for kind, entry in vocab.kinds.items():
        rows.append((f"kinds.{kind}", kind, None, False, None,
                     vocab.targets(entry, plan.plan, inds)))
    for s in vocab.services:
        targets = vocab.targets(s, plan.plan, inds)
        for kind in s.kinds:
            rows += [(f"services.{s.id}", kind, n, False, None, targets) for n in s.names]
            rows += [(f"services.{s.id}", kind, n, True, None, targets) for n in s.exact]
    cols = [list(c) for c in zip(*rows, strict=True)]
    con.execute(
        "INSERT INTO intermediate.int_rules_vocabulary SELECT unnest(?::VARCHAR[]), "
        "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::BOOLEAN[]), "
        "unnest(?::INTEGER[]), unnest(?::VARCHAR[][])", cols)
    con.execute("ALTER TABLE intermediate.int_rules_vocabulary ADD COLUMN name_norm VARCHAR")
    con.execute("UPDATE intermediate.int_rules_vocabulary SET name_norm = evidence_norm(name)")


# Extracts the contract says do not arrive every month ("school data is termly,
# DWP data quarterly"); every other extract is expected in every month folder.
NOT_MONTHLY = ("school_attendance", "school_exclusions", "dwp_benefits", "dwp_employment")
_MONTH_DIR = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def monthly_extracts() -> list[str]:
    """Extracts expected every month (the contract's cadence where it states one)."""
    from famlink.contract import load_contract

    out = []
    for spec in load_contract().files.values():
        cadence = getattr(spec, "cadence", None)
        if (cadence == "monthly") if cadence else spec.name not in NOT_MONTHLY:
            out.append(spec.name)
    return sorted(out)


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
        "AND database_name = current_database()", [schema, name]).fetchone()
    return bool(row and row[0])


def _write_delivered(con: duckdb.DuckDBPyConnection) -> None:
    """Which monthly extract was delivered in which month, and the months it was not.

    A month counts as delivered when meta.deliveries holds a delivery of the file
    for it that is not empty, or when the file is in that month's folder of a
    drop the warehouse loaded (a file identical to one loaded before is skipped
    by ingest and not recorded, but it was delivered). The model
    int_rules_delivery_gaps derives the months with no delivery from it.
    """
    con.execute("CREATE OR REPLACE TABLE intermediate.int_rules_delivered "
                "(extract VARCHAR, month VARCHAR)")
    monthly = monthly_extracts()
    if _table_exists(con, "meta", "deliveries"):
        con.execute(
            "INSERT INTO intermediate.int_rules_delivered SELECT DISTINCT extract, month "
            "FROM meta.deliveries WHERE status IS DISTINCT FROM 'empty' "
            "AND list_contains(?, extract)", [monthly])
    if _table_exists(con, "meta", "loads"):
        rows = con.execute("SELECT extracts_dir, max(up_to_month) FROM meta.loads "
                           "WHERE extracts_dir IS NOT NULL GROUP BY extracts_dir").fetchall()
        found: list[tuple[str, str]] = []
        for folder, up_to in rows:
            found += _drop_files(Path(folder), str(up_to or ""), monthly)
        con.executemany("INSERT INTO intermediate.int_rules_delivered VALUES (?, ?)", found)


def _contract_files() -> list:
    from famlink.contract import load_contract

    return list(load_contract().files.values())


def _drop_files(folder: Path, up_to: str, extracts: list[str]) -> list[tuple[str, str]]:
    """(extract, month) for each non-empty monthly file in a drop folder's months."""
    out: list[tuple[str, str]] = []
    try:
        months = [p for p in folder.iterdir() if _MONTH_DIR.match(p.name) and p.name <= up_to]
    except OSError:
        return out
    for month in months:
        for name in extracts:
            path = month / f"{name}.csv"
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_size > 0:
                    out.append((name, month.name))
            except OSError:
                continue
    return out


def _build(con: duckdb.DuckDBPyConnection, schema: str, name: str, sql: str) -> None:
    try:
        con.execute(f"CREATE OR REPLACE TABLE {schema}.{name} AS\n{sql}")
    except duckdb.Error as exc:
        raise RuntimeError(f"building {schema}.{name} failed: {exc}") from exc


# --------------------------------------------------------------- rendering
# A template names each value it takes as a DuckDB parameter ($name); the engine binds
# the rule's values to them when it runs the SQL. No part of the SQL text comes from
# the plan, so a plan's values can never change what the SQL does, only what it compares.
Value = str | int | float | bool | list[str] | list[int] | None
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Bound:
    """A template's SQL and the values its parameters take."""

    sql: str
    values: dict[str, Value]
    origin: str  # the template, for messages

    def run(self, con: Con, prefix: str = "") -> duckdb.DuckDBPyConnection:
        """Execute ``prefix`` + the SQL with its values bound."""
        return con.execute(prefix + self.sql, self.values)


def bind(sql: str, values: dict[str, Value], origin: str) -> Bound:
    """The values the SQL names (DuckDB refuses any other); a name with no value is an error
    naming the template."""
    names = set(_PARAMETER.findall(_without_comments(sql)))
    missing = sorted(names - set(values))
    if missing:
        raise RuntimeError(f"{origin}: no value for ${missing[0]}")
    return Bound(sql, {k: v for k, v in values.items() if k in names}, origin)


def _without_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


@cache
def _template(kind_file: str) -> tuple[str, str]:
    """A rule template's (results, evidence) SQL: the shared WITH head and each part."""
    text = (SQL_DIR / kind_file).read_text(encoding="utf-8")
    head, rest = text.split("-- @results", 1)
    results, evidence = rest.split("-- @evidence", 1)
    return head + results, head + evidence


def _data_extracts(extracts: list[str]) -> list[str]:
    return sorted(set(extracts))


def _rule_extracts(rule: Rule) -> list[str]:
    """Extracts a rule's has-data test rests on (none for most kinds)."""
    if isinstance(rule, CountRule):
        return _data_extracts([EVENT_MEASURES[m] for m in rule.measures])
    if isinstance(rule, EpisodeRule):
        return ["social_care_episodes"]
    return []


def data_extracts() -> list[str]:
    """Every extract a rule's has-data test can rest on (transforms/intermediate/
    int_rules_extract_rows.sql counts each one's rows)."""
    return sorted({*EVENT_MEASURES.values(), "social_care_episodes"})


@cache
def _scopes_sql() -> str:
    return (SQL_DIR / "scopes.sql").read_text(encoding="utf-8")


def rule_values(rule: Rule, codes: list[str] | None = None) -> tuple[str, dict[str, Value]]:
    """A leaf rule's template file and the values it takes.

    ``codes`` are the outcome ids practitioner evidence may carry for this rule
    (its own and those of the outcome lines it is a part of). The problems a rule is
    judged for are its rows of intermediate.int_rules_targets.
    """
    values: dict[str, Value] = {"outcome_id": rule.id, "scope": rule.scope}
    if isinstance(rule, CountRule):
        file = "count.sql"
        windowed = rule.after_months is not None
        values.update(
            measures=list(rule.measures),
            before_months=rule.before_months,
            window_months=rule.after_months if windowed else 0,
            first_months=rule.after_months if windowed else rule.sustain_months,
            windowed=windowed,
            zero_baseline=str(rule.zero_baseline),
            strict=rule.strict,
            min_reduction=float(rule.min_reduction),
            max_after=rule.max_after,
            gravity=rule.gravity_not_increased,
            data_extracts=_rule_extracts(rule),
            extracts=_event_extracts(rule.measures),
            person_age=rule.person_age,
        )
    elif isinstance(rule, ScoreRule):
        file = "score.sql"
        values.update(measure=rule.measure, sustain_months=rule.sustain_months)
    elif isinstance(rule, AttendanceRule):
        file = "attendance.sql"
        values.update(
            count_attachment_term=False,
            basis=rule.basis,
            terms=rule.terms,
            strictly_above=rule.strictly_above,
            min_attendance=float(rule.min_attendance),
            max_susp=rule.max_suspensions,
            low_below=rule.low_baseline_below,
            low_max=rule.low_baseline_max,
            min_red=rule.min_suspension_reduction,
            no_perm=rule.no_permanent,
        )
    elif isinstance(rule, EpisodeRule):
        file = "episode.sql"
        values.update(
            closed_types=list(rule.closed_types),
            rereferral_types=list(rule.rereferral_types),
            escalation_types=list(rule.escalation_types),
            bad_end_reasons=list(rule.bad_end_reasons),
            sustain_months=rule.sustain_months,
            if_no_episode=rule.if_no_episode,
            data_extracts=_rule_extracts(rule),
        )
    elif isinstance(rule, EvidenceRule):
        file = "evidence.sql"
        domains = [d.strip().upper() for d in rule.domains]
        values.update(
            kinds=list(rule.kinds),
            has_domains=bool(domains),
            domains=domains,
            match_code=rule.match_outcome_code,
            codes=[c.upper() for c in (codes or [rule.id])],
            require_completed=rule.require_completed,
            min_days=rule.min_duration_weeks * 7,
            sustain_months=rule.sustain_months,
            current=rule.current,
        )
    elif isinstance(rule, FamilyStarRule):
        file = "family_star.sql"
        values.update(
            star_domains=[int(d) for d in rule.star_domains],
            min_score=rule.min_score,
            min_domains=rule.min_domains or len(rule.star_domains),
            sustain_months=rule.sustain_months,
        )
    elif isinstance(rule, EmploymentRule):
        file = "employment.sql"
        values.update(per_person=rule.scope == "person")
    else:  # pragma: no cover - composites are compiled by compile_composite
        raise TypeError(f"rule {rule.id}: kind {rule.kind} is not a leaf rule")
    return file, values


def compile_rule(rule: Rule, codes: list[str] | None = None) -> tuple[Bound, Bound]:
    """(results, evidence) of a leaf rule: its template bound to the rule's values."""
    file, values = rule_values(rule, codes)
    results, evidence = _template(file)
    origin = f"rules/sql/{file}"
    return bind(results, values, origin), bind(evidence, values, origin)


def _event_extracts(measures: list[str]) -> list[str]:
    """Extracts whose deliveries a count of these measures rests on."""
    found = {EVENT_MEASURES[m] for m in measures}
    if "police_nominals" in found:  # a nominal is dated by its incident
        found.add("police_incidents")
    return sorted(found)


def compile_composite(rule: CompositeRule, indicators: list[str]) -> tuple[Bound, Bound]:
    """(results, evidence) of an all_of / any_of line over its parts' results, which the
    graph has computed before it (rules/sql/composite.sql)."""
    results, evidence = _template("composite.sql")
    values: dict[str, Value] = {
        "outcome_id": rule.id, "parts": list(rule.parts), "n_parts": len(rule.parts),
        "all_of": rule.kind == "all_of", "indicators": list(indicators),
    }
    origin = "rules/sql/composite.sql"
    return bind(results, values, origin), bind(evidence, values, origin)


def compile_ce(ce: CeSpec) -> list[Bound]:
    """Every continuous-employment route of the plan: the route template bound to its
    values (one row per move off benefit, each route's rows appended to one table)."""
    return [bind(_ce_template(), _route_values(ce, route), "rules/sql/ce_route.sql")
            for route in ce.routes]


def _route_values(ce: CeSpec, route: CeRoute) -> dict[str, Value]:
    return {
        "oow_benefits": list(ce.out_of_work_benefits),
        "oow_regimes": list(ce.out_of_work_uc_regimes),
        "trigger": route.trigger,
        "from_benefits": list(route.from_benefits),
        "has_from_regimes": bool(route.from_uc_regimes),
        "from_regimes": list(route.from_uc_regimes),
        "to_regimes": list(route.to_uc_regimes),
        "qualifying": route.qualifying,
        "window_days": (route.window_weeks or route.min_weeks) * 7,
        "min_days": route.min_weeks * 7,
        "route": route.id,
    }


@cache
def _ce_template() -> str:
    return (SQL_DIR / "ce_route.sql").read_text(encoding="utf-8")


# --------------------------------------------------------------- running
def rule_targets(plan: Plan) -> dict[str, list[str]]:
    """Indicators each rule is evaluated for (components inherit their parents')."""
    targets: dict[str, list[str]] = {r.id: [] for r in plan.rules}
    for code in plan.indicators:
        for rid in plan.lines_for(code):
            if code not in targets[rid]:
                targets[rid].append(code)
    changed = True
    while changed:
        changed = False
        for r in plan.rules:
            if isinstance(r, CompositeRule):
                for part in r.parts:
                    for code in targets[r.id]:
                        if code not in targets[part]:
                            targets[part].append(code)
                            changed = True
    return {k: sorted(v) for k, v in targets.items()}


def _ancestors(plan: Plan, rule_id: str) -> list[str]:
    """Ids of the composite rules that include this one, directly or not."""
    found: list[str] = []
    frontier = [rule_id]
    while frontier:
        current = frontier.pop()
        for r in plan.rules:
            if isinstance(r, CompositeRule) and current in r.parts and r.id not in found:
                found.append(r.id)
                frontier.append(r.id)
    return sorted(found)


def _rule_order(plan: Plan) -> list[Rule]:
    """Leaf rules first, then composites after their parts."""
    done: list[str] = []
    ordered: list[Rule] = []

    def visit(r: Rule, path: tuple[str, ...]) -> None:
        if r.id in done:
            return
        if r.id in path:
            raise RuleFileError(f"rules/{plan.plan}.yaml: rule {r.id}: parts form a cycle")
        if isinstance(r, CompositeRule):
            for part in r.parts:
                visit(plan.rule(part), (*path, r.id))
        done.append(r.id)
        ordered.append(r)

    for r in plan.rules:
        visit(r, ())
    return ordered


# --------------------------------------------------------------- the graph
# Layers the engine builds; staging views and analyst views are built by
# ingest/publish from the same graph, and are already there when it runs.
BUILT_LAYERS = ("meta", "intermediate", "rules", "marts")
RESULTS = "intermediate.int_rules_results"
EVIDENCE = "intermediate.int_rules_evidence"
RULE_INDICATORS = "intermediate.int_rules_rule_indicators"
CE_ROUTES = "intermediate.int_rules_ce_routes"
# Session tables every rule appends its rows to (a composite reads its parts' there),
# collected into RESULTS / EVIDENCE in rule order and dropped.
_SESSION_RESULTS, _SESSION_EVIDENCE = "rule_results", "rule_evidence"


def _rule_node(rule_id: str) -> str:
    return f"rules.{rule_id}"


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    index: int
    results: Bound
    evidence: Bound


def _compiled_rules(plan: Plan) -> list[_CompiledRule]:
    """Each rule with targets, bound to its values: leaves to their kind's template,
    composites to rules/sql/composite.sql (after their parts in the graph)."""
    targets = rule_targets(plan)
    out: list[_CompiledRule] = []
    for rule in _rule_order(plan):
        inds = targets[rule.id]
        if not inds:
            continue
        if isinstance(rule, CompositeRule):
            results, evidence = compile_composite(rule, inds)
        else:
            results, evidence = compile_rule(rule, [rule.id, *_ancestors(plan, rule.id)])
        out.append(_CompiledRule(rule, len(out), results, evidence))
    return out


@cache
def _template_references(template: str) -> frozenset[str]:
    """The tables a rule template reads (a template takes values, which name no table,
    so one parse per template serves every rule bound to it)."""
    results, evidence = _template(template)
    return frozenset(references(results + ";\n" + evidence, f"rules/sql/{template}"))


def plan_graph(plan: Plan, root: Path = TRANSFORMS_DIR) -> ModelGraph:
    """The transforms/ models plus what the plan compiles to: the CE routes, one model
    per outcome rule, and the tables written from the plan and the vocabulary."""
    rules = _compiled_rules(plan)
    yaml_file = f"rules/{plan.plan}.yaml"
    engine = "rules/engine.py"
    extra = [
        written_model("intermediate.int_rules_vocabulary", "intermediate",
                      f"{engine} from rules/evidence_vocabulary.yaml"),
        written_model("intermediate.int_rules_delivered", "intermediate",
                      f"{engine} from meta.deliveries and the drop folders",
                      reads=["meta.deliveries", "meta.loads"]),
        written_model("intermediate.int_rules_catalog", "intermediate",
                      f"{engine} from {yaml_file}"),
        written_model("intermediate.int_rules_applicable", "intermediate",
                      f"{engine} from {yaml_file}"),
        written_model(RULE_INDICATORS, "intermediate",
                      f"{engine} from {yaml_file} (the indicators each rule is judged for)"),
        sql_model(CE_ROUTES, "intermediate", _ce_template(),
                  f"{yaml_file} ce routes (rules/sql/ce_route.sql)"),
    ]
    compiled = {c.rule.id for c in rules}
    for c in rules:
        parts = c.rule.parts if isinstance(c.rule, CompositeRule) else []
        template = c.results.origin.removeprefix("rules/sql/")
        origin = f"{yaml_file} rule {c.rule.id} ({c.results.origin})"
        # a composite reads its parts' rows from the session tables: its edges are its parts
        refs = [] if parts else _template_references(template)
        extra.append(sql_model(_rule_node(c.rule.id), "rules",
                               c.results.sql + ";\n" + c.evidence.sql, origin,
                               extra=[_rule_node(p) for p in parts if p in compiled], refs=refs))
    nodes = [_rule_node(c.rule.id) for c in rules] + [RULE_INDICATORS]  # + the session tables
    extra += [written_model(RESULTS, "intermediate", f"{engine} from every rule", reads=nodes),
              written_model(EVIDENCE, "intermediate", f"{engine} from every rule", reads=nodes)]
    return model_graph(root, extra)


def _steps(plan: Plan, vocab: Vocabulary, as_of: date) -> dict[str, Callable[[Con], None]]:
    """How each model that is not a plain SELECT is made."""
    rules = _compiled_rules(plan)
    steps: dict[str, Callable[[Con], None]] = {
        RUN_PARAMETERS: lambda con: _write_parameters(con, plan, as_of),
        "intermediate.int_rules_vocabulary": lambda con: _write_vocabulary(con, plan, vocab),
        "intermediate.int_rules_delivered": _write_delivered,
        "intermediate.int_rules_catalog": lambda con: _write_catalog(con, plan),
        "intermediate.int_rules_applicable": lambda con: _write_applicable(con, plan),
        RULE_INDICATORS: lambda con: _write_rule_indicators(con, plan, rules),
        CE_ROUTES: lambda con: _build_ce_routes(con, plan),
        RESULTS: lambda con: _collect(con, _SESSION_RESULTS, _RESULT_COLUMNS, RESULTS),
        EVIDENCE: lambda con: _collect(con, _SESSION_EVIDENCE, _EVIDENCE_COLUMNS, EVIDENCE),
    }
    for c in rules:
        steps[_rule_node(c.rule.id)] = lambda con, c=c: _run_rule(con, plan, c)
    return steps


def _write_rule_indicators(con: Con, plan: Plan, rules: list[_CompiledRule]) -> None:
    """The indicators each rule is judged for (a component inherits its lines'), read by
    intermediate.int_rules_targets; the session tables the rules append to, emptied."""
    targets = rule_targets(plan)
    con.execute(f"CREATE OR REPLACE TABLE {RULE_INDICATORS} "
                "(rule_index INTEGER, outcome_id VARCHAR, indicator VARCHAR)")
    rows = [(c.index, c.rule.id, code) for c in rules for code in targets[c.rule.id]]
    if rows:
        con.executemany(f"INSERT INTO {RULE_INDICATORS} VALUES (?, ?, ?)", rows)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_SESSION_RESULTS} "
                f"(rule_index INTEGER, {_RESULT_COLUMNS})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_SESSION_EVIDENCE} "
                f"(rule_index INTEGER, {_EVIDENCE_COLUMNS})")


def _build_ce_routes(con: Con, plan: Plan) -> None:
    """Every CE route's rows in one table: the route template run once per route."""
    for i, route in enumerate(compile_ce(plan.ce)):
        verb = (f"CREATE OR REPLACE TABLE {CE_ROUTES} AS\n" if i == 0
                else f"INSERT INTO {CE_ROUTES}\n")
        try:
            route.run(con, verb)
        except duckdb.Error as exc:
            raise RuntimeError(f"building {CE_ROUTES} failed: {exc}") from exc


def _columns(columns: str) -> str:
    return ", ".join(c.split()[0] for c in columns.split(", "))


def _run_rule(con: Con, plan: Plan, c: _CompiledRule) -> None:
    """One rule's results and evidence, appended to the session tables (typed as the
    collected tables are, so composites read the same values)."""
    try:
        for table, columns, bound in ((_SESSION_RESULTS, _RESULT_COLUMNS, c.results),
                                      (_SESSION_EVIDENCE, _EVIDENCE_COLUMNS, c.evidence)):
            con.execute(f"CREATE OR REPLACE TEMP TABLE rule_rows ({columns})")
            bound.run(con, "INSERT INTO rule_rows\n")
            con.execute(f"INSERT INTO {table} SELECT ?, * FROM rule_rows", [c.index])
        con.execute("DROP TABLE rule_rows")
    except duckdb.Error as exc:
        raise RuntimeError(f"rules/{plan.plan}.yaml: rule {c.rule.id} failed: {exc}") from exc


def _collect(con: Con, session: str, columns: str, table: str) -> None:
    """Every rule's rows, in rule order, into one table; the session table dropped."""
    con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
    con.execute(f"INSERT INTO {table} SELECT {_columns(columns)} FROM temp.main.{session} "
                "ORDER BY rule_index")
    con.execute(f"DROP TABLE temp.main.{session}")


def describe(rule: Rule) -> str:
    """Human-readable rule text: the plan's words and the parameters used."""
    common = {
        "id", "text", "applies_to", "interchangeable", "evidence", "reading", "component",
    }
    params = rule.model_dump(exclude=common, exclude_defaults=True)
    params["kind"] = rule.kind
    params.setdefault("scope", rule.scope)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{rule.id}: {' '.join(rule.text.split())} [{shown}]"


def _write_catalog(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE intermediate.int_rules_catalog (plan VARCHAR, "
        "outcome_id VARCHAR, kind VARCHAR, component BOOLEAN, applies_to VARCHAR, "
        "rule_text VARCHAR, reading VARCHAR)"
    )
    rows = [
        (plan.plan, r.id, r.kind, r.component, ";".join(r.applies_to), describe(r), r.reading)
        for r in plan.rules
    ]
    con.executemany("INSERT INTO intermediate.int_rules_catalog VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def _write_applicable(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE intermediate.int_rules_applicable "
        "(indicator VARCHAR, outcome_id VARCHAR)"
    )
    pairs = [(code, rid) for code in plan.indicators for rid in plan.lines_for(code)]
    con.executemany("INSERT INTO intermediate.int_rules_applicable VALUES (?, ?)", pairs)


def _counts(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    rows = con.execute(
        f"SELECT status, count(*) FROM {table} GROUP BY status ORDER BY status"
    ).fetchall()
    return {str(s): int(n) for s, n in rows}


def _summary(con: duckdb.DuckDBPyConnection, plan_name: str, as_of: date) -> OutcomeSummary:
    fam, probs = con.execute(
        "SELECT count(DISTINCT family_id), count(*) FROM marts.family_problems"
    ).fetchone() or (0, 0)
    return OutcomeSummary(
        plan=plan_name,
        as_of=as_of,
        families=int(fam),
        problems=int(probs),
        outcomes=_counts(con, "marts.outcomes"),
        problem_status=_counts(con, "marts.problem_status"),
        ce_status=_counts(con, "marts.ce_status"),
        unmatched_evidence=int((con.execute(
            "SELECT count(*) FROM marts.unmatched_evidence").fetchone() or (0,))[0]),
    )

