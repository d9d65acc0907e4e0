"""Compile a plan's outcome rules to SQL over the measures and run them.

The measures are SQL models in ``transforms/intermediate`` (one per file);
each rule kind is one SQL template in ``rules/sql``; the marts in
``transforms/marts`` collapse the per-rule results. Everything runs inside
DuckDB, so a cohort of thousands of families is a handful of set-based
queries, and the same inputs and as-of date always give the same tables.
"""

from __future__ import annotations

import re
import string
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
def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: list[str] | tuple[str, ...]) -> str:
    """A SQL list of string literals; NULL for an empty list (matches nothing)."""
    return ", ".join(sql_str(v) for v in values) if values else "NULL"


def sql_opt(value: float | int | None) -> str:
    """A number or NULL."""
    return "NULL" if value is None else repr(value)


def sql_bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


@cache
def _template(kind_file: str) -> tuple[str, str, str]:
    text = (SQL_DIR / kind_file).read_text(encoding="utf-8")
    head, rest = text.split("-- @results", 1)
    results, evidence = rest.split("-- @evidence", 1)
    return head, results, evidence


def sql_array(values: list[str] | tuple[str, ...]) -> str:
    """A SQL VARCHAR[] literal (empty when there are no values)."""
    return f"[{', '.join(sql_str(v) for v in values)}]::VARCHAR[]"


def _data_extracts(extracts: list[str]) -> list[str]:
    return sorted(set(extracts))


def _rule_extracts(rule: Rule) -> list[str]:
    """Extracts a rule's has-data test rests on (none for most kinds)."""
    if isinstance(rule, CountRule):
        return _data_extracts([EVENT_MEASURES[m] for m in rule.measures])
    if isinstance(rule, EpisodeRule):
        return ["social_care_episodes"]
    return []


def compile_extract_rows(plan: Plan) -> str:
    """SQL: for each extract a rule's has-data test rests on, whether it has any row."""
    extracts = sorted({e for r in plan.rules for e in _rule_extracts(r)})
    if not extracts:
        return "SELECT CAST(NULL AS VARCHAR) AS extract, CAST(NULL AS BOOLEAN) AS has_rows LIMIT 0"
    return "\nUNION ALL\n".join(
        f"SELECT {sql_str(e)} AS extract, count(*) > 0 AS has_rows FROM staging.{e}"
        for e in extracts)


@cache
def _scopes_sql() -> str:
    return (SQL_DIR / "scopes.sql").read_text(encoding="utf-8")


def compile_rule(
    rule: Rule, indicators: list[str], codes: list[str] | None = None
) -> tuple[str, str]:
    """SQL (results, evidence) for a leaf rule over the problems with these indicators.

    ``codes`` are the outcome ids practitioner evidence may carry for this rule
    (its own and those of the outcome lines it is a part of).
    """
    params: dict[str, str] = {
        "indicators": sql_list(indicators),
        "outcome_id": sql_str(rule.id),
        "scope": sql_str(rule.scope),
    }
    if isinstance(rule, CountRule):
        file = "count.sql"
        windowed = rule.after_months is not None
        params.update(
            measures=sql_list(rule.measures),
            before_months=str(rule.before_months),
            window_months=str(rule.after_months if windowed else 0),
            first_months=str(rule.after_months if windowed else rule.sustain_months),
            windowed=sql_bool(windowed),
            zero_baseline=sql_str(str(rule.zero_baseline)),
            strict=sql_bool(rule.strict),
            min_reduction=repr(rule.min_reduction),
            max_after=sql_opt(rule.max_after),
            gravity=sql_bool(rule.gravity_not_increased),
            data_extracts=sql_array(_rule_extracts(rule)),
            extracts=sql_list(_event_extracts(rule.measures)),
            person_age=sql_str(rule.person_age),
        )
    elif isinstance(rule, ScoreRule):
        file = "score.sql"
        params.update(
            measure=sql_str(rule.measure),
            sustain_months=str(rule.sustain_months),
        )
    elif isinstance(rule, AttendanceRule):
        file = "attendance.sql"
        params.update(
            count_attachment_term="FALSE",
            basis=sql_str(rule.basis),
            terms=str(rule.terms),
            strictly_above=sql_bool(rule.strictly_above),
            min_attendance=repr(rule.min_attendance),
            max_susp=sql_opt(rule.max_suspensions),
            low_below=sql_opt(rule.low_baseline_below),
            low_max=sql_opt(rule.low_baseline_max),
            min_red=sql_opt(rule.min_suspension_reduction),
            no_perm=sql_bool(rule.no_permanent),
        )
    elif isinstance(rule, EpisodeRule):
        file = "episode.sql"
        params.update(
            closed_types=sql_list(rule.closed_types),
            rereferral_types=sql_list(rule.rereferral_types),
            escalation_types=sql_list(rule.escalation_types),
            bad_end_reasons=sql_list(rule.bad_end_reasons),
            sustain_months=str(rule.sustain_months),
            if_no_episode=rule.if_no_episode,
            data_extracts=sql_array(_rule_extracts(rule)),
        )
    elif isinstance(rule, EvidenceRule):
        file = "evidence.sql"
        domains = [d.strip().upper() for d in rule.domains]
        params.update(
            kinds=sql_list(rule.kinds),
            has_domains=sql_bool(bool(domains)),
            domains=sql_list(domains),
            match_code=sql_bool(rule.match_outcome_code),
            codes=sql_list([c.upper() for c in (codes or [rule.id])]),
            require_completed=sql_bool(rule.require_completed),
            min_days=str(rule.min_duration_weeks * 7),
            sustain_months=str(rule.sustain_months),
            current=sql_bool(rule.current),
        )
    elif isinstance(rule, FamilyStarRule):
        file = "family_star.sql"
        params.update(
            star_domains=", ".join(str(d) for d in rule.star_domains),
            min_score=str(rule.min_score),
            min_domains=str(rule.min_domains or len(rule.star_domains)),
            sustain_months=str(rule.sustain_months),
        )
    elif isinstance(rule, EmploymentRule):
        file = "employment.sql"
        params.update(per_person=sql_bool(rule.scope == "person"))
    else:  # pragma: no cover - composites are compiled by compile_composite
        raise TypeError(f"rule {rule.id}: kind {rule.kind} is not a leaf rule")
    head, results, evidence = _template(file)
    try:
        return (
            string.Template(head + results).substitute(params),
            string.Template(head + evidence).substitute(params),
        )
    except (KeyError, ValueError) as exc:
        raise RuntimeError(f"rule {rule.id}: template {file}: missing {exc}") from exc


def _event_extracts(measures: list[str]) -> list[str]:
    """Extracts whose deliveries a count of these measures rests on."""
    found = {EVENT_MEASURES[m] for m in measures}
    if "police_nominals" in found:  # a nominal is dated by its incident
        found.add("police_incidents")
    return sorted(found)


def compile_composite(
    rule: CompositeRule, indicators: list[str],
    results_from: str = "intermediate.int_rules_results",
    evidence_from: str = "intermediate.int_rules_evidence",
) -> tuple[str, str]:
    """SQL (results, evidence) combining the parts' results already computed
    (read from ``results_from`` / ``evidence_from``: a table, or the parts' own)."""
    parts = sql_list(rule.parts)
    inds = sql_list(indicators)
    n = len(rule.parts)
    if rule.kind == "all_of":
        status = (
            f"CASE WHEN count(*) FILTER (WHERE status = 'achieved') = {n} THEN 'achieved' "
            "WHEN bool_or(status = 'not_achieved') THEN 'not_achieved' "
            "WHEN bool_or(status = 'not_yet_sustained') THEN 'not_yet_sustained' "
            "ELSE 'insufficient_data' END"
        )
        achieved = (
            f"CASE WHEN count(*) FILTER (WHERE status = 'achieved') = {n} "
            "THEN max(achieved_on) END"
        )
    else:
        status = (
            "CASE WHEN bool_or(status = 'achieved') THEN 'achieved' "
            "WHEN bool_or(status = 'not_yet_sustained') THEN 'not_yet_sustained' "
            "WHEN bool_or(status = 'not_achieved') THEN 'not_achieved' "
            "ELSE 'insufficient_data' END"
        )
        achieved = "min(achieved_on) FILTER (WHERE status = 'achieved')"
    results = (
        f"SELECT {sql_str(rule.id)} AS outcome_id, family_id, indicator, {status} AS status, "
        f"{achieved} AS achieved_on, "
        "string_agg(outcome_id || '=' || status, ' ' ORDER BY outcome_id) AS detail "
        f"FROM {results_from} "
        f"WHERE outcome_id IN ({parts}) AND indicator IN ({inds}) GROUP BY family_id, indicator"
    )
    evidence = (
        f"SELECT DISTINCT {sql_str(rule.id)} AS outcome_id, family_id, indicator, extract, "
        "delivery_id, month, record_key, person_ref, match_method, match_probability, "
        f"outcome_id || ': ' || detail FROM {evidence_from} "
        f"WHERE outcome_id IN ({parts}) AND indicator IN ({inds})"
    )
    return results, evidence


def compile_ce(ce: CeSpec) -> str:
    """SQL for every continuous-employment route of the plan (one row per move off benefit)."""
    selects = [_compile_route(ce, route) for route in ce.routes]
    return "\nUNION ALL\n".join(f"SELECT * FROM ({s})" for s in selects)


def _compile_route(ce: CeSpec, route: CeRoute) -> str:
    head = _ce_template()
    params = {
        "oow_benefits": sql_list(ce.out_of_work_benefits),
        "oow_regimes": sql_list(ce.out_of_work_uc_regimes),
        "trigger": sql_str(route.trigger),
        "from_benefits": sql_list(route.from_benefits),
        "has_from_regimes": sql_bool(bool(route.from_uc_regimes)),
        "from_regimes": sql_list(route.from_uc_regimes),
        "to_regimes": sql_list(route.to_uc_regimes),
        "qualifying": sql_str(route.qualifying),
        "window_days": str((route.window_weeks or route.min_weeks) * 7),
        "min_days": str(route.min_weeks * 7),
        "route": sql_str(route.id),
    }
    return string.Template(head).substitute(params)


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


_TEMPLATE_FILES: dict[type, str] = {
    CountRule: "count.sql", ScoreRule: "score.sql", AttendanceRule: "attendance.sql",
    EpisodeRule: "episode.sql", EvidenceRule: "evidence.sql", FamilyStarRule: "family_star.sql",
    EmploymentRule: "employment.sql",
}


def _rule_node(rule_id: str) -> str:
    return f"rules.{rule_id}"


def _rule_tables(index: int) -> tuple[str, str]:
    """Session (temp) tables holding one rule's results and evidence until collected."""
    return f"temp.main.rule_results_{index}", f"temp.main.rule_evidence_{index}"


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    index: int
    results: str
    evidence: str


def _compiled_rules(plan: Plan) -> list[_CompiledRule]:
    """Each rule with targets, compiled: leaves from their template, composites over their
    parts' own tables (so a composite depends on its parts in the graph)."""
    targets = rule_targets(plan)
    out: list[_CompiledRule] = []
    index: dict[str, int] = {}
    for rule in _rule_order(plan):
        inds = targets[rule.id]
        if not inds:
            continue
        index[rule.id] = len(out)
        if isinstance(rule, CompositeRule):
            parts = [index[p] for p in rule.parts if p in index]
            res = " UNION ALL ".join(f"SELECT * FROM {_rule_tables(i)[0]}" for i in parts)
            evi = " UNION ALL ".join(f"SELECT * FROM {_rule_tables(i)[1]}" for i in parts)
            results, evidence = compile_composite(rule, inds, f"({res})", f"({evi})")
        else:
            results, evidence = compile_rule(rule, inds, [rule.id, *_ancestors(plan, rule.id)])
        out.append(_CompiledRule(rule, len(out), results, evidence))
    return out


_TEMPLATE_REFERENCES: dict[str, frozenset[str]] = {}


def _template_references(template: str, sql: str, origin: str) -> frozenset[str]:
    """The tables a leaf rule reads are its template's: a template takes values, which
    name no table, so one parse per template serves every rule compiled from it (a
    parse costs ~0.1 s, a plan has dozens of rules)."""
    if template not in _TEMPLATE_REFERENCES:
        _TEMPLATE_REFERENCES[template] = frozenset(references(sql, origin))
    return _TEMPLATE_REFERENCES[template]


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
        sql_model("intermediate.int_rules_ce_routes", "intermediate", compile_ce(plan.ce),
                  f"{yaml_file} ce routes (rules/sql/ce_route.sql)"),
        sql_model("intermediate.int_rules_extract_rows", "intermediate",
                  compile_extract_rows(plan), f"{engine} from {yaml_file}"),
    ]
    compiled = {c.rule.id for c in rules}
    for c in rules:
        parts = c.rule.parts if isinstance(c.rule, CompositeRule) else []
        template = "composite" if parts else f"rules/sql/{_TEMPLATE_FILES[type(c.rule)]}"
        sql, origin = c.results + ";\n" + c.evidence, f"{yaml_file} rule {c.rule.id} ({template})"
        extra.append(sql_model(_rule_node(c.rule.id), "rules", sql, origin,
                               extra=[_rule_node(p) for p in parts if p in compiled],
                               refs=None if parts else _template_references(template, sql, origin)))
    nodes = [_rule_node(c.rule.id) for c in rules]
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
        RESULTS: lambda con: _collect(con, plan, rules, 0, _RESULT_COLUMNS, RESULTS),
        EVIDENCE: lambda con: _collect(con, plan, rules, 1, _EVIDENCE_COLUMNS, EVIDENCE),
    }
    for c in rules:
        steps[_rule_node(c.rule.id)] = lambda con, c=c: _run_rule(con, plan, c)
    return steps


def _run_rule(con: Con, plan: Plan, c: _CompiledRule) -> None:
    """One rule's results and evidence, into its own session tables (typed as the
    collected tables are, so composites read the same values)."""
    results, evidence = _rule_tables(c.index)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {results.removeprefix('temp.main.')} "
                    f"({_RESULT_COLUMNS})")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {evidence.removeprefix('temp.main.')} "
                    f"({_EVIDENCE_COLUMNS})")
        con.execute(f"INSERT INTO {results}\n{c.results}")
        con.execute(f"INSERT INTO {evidence}\n{c.evidence}")
    except duckdb.Error as exc:
        raise RuntimeError(f"rules/{plan.plan}.yaml: rule {c.rule.id} failed: {exc}") from exc


def _collect(con: Con, plan: Plan, rules: list[_CompiledRule], which: int, columns: str,
             table: str) -> None:
    """Every rule's rows, in rule order, into one table; the session tables dropped."""
    con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
    for c in rules:
        part = _rule_tables(c.index)[which]
        con.execute(f"INSERT INTO {table} SELECT * FROM {part}")
        con.execute(f"DROP TABLE {part}")


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

