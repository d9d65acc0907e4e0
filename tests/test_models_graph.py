"""The model graph: the build order comes from the models' references, a cycle or a
reference to no model fails naming the file, and `famlink models` lists it."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
from safety_support import famlink, run_args, write_drop
from test_rules_fixtures import World

from famlink.contract import PLANS
from famlink.models import (
    FILE_LAYERS,
    RUN_PARAMETERS,
    TRANSFORMS_DIR,
    ModelGraph,
    ModelGraphError,
    model_graph,
    references,
    render_staging,
    rendered_staging,
)
from rules.engine import (
    BUILT_LAYERS,
    _compiled_rules,
    _rule_extracts,
    _template_references,
    data_extracts,
    load_plan,
    plan_graph,
    rule_targets,
)

REPO = TRANSFORMS_DIR.parent
SQL_FILES = sorted(p.relative_to(REPO).as_posix()
                   for layer in FILE_LAYERS for p in (TRANSFORMS_DIR / layer).glob("*.sql"))


def _check_order(graph: ModelGraph) -> list[str]:
    names = [m.name for m in graph.order()]
    assert sorted(names) == sorted(graph.models)
    seen: set[str] = set()
    for m in graph.order():
        for dep in m.depends_on:
            if dep in graph.models:
                assert dep in seen, f"{m.name} is built before {dep}, which it reads"
        seen.add(m.name)
    return names


@pytest.mark.parametrize("plan", PLANS)
def test_the_order_respects_every_reference(plan: str) -> None:
    graph = plan_graph(load_plan(plan))
    _check_order(graph)
    files = {m.origin for m in graph.models.values() if m.path is not None}
    assert files == set(SQL_FILES)
    # the rules are models of the same graph: composites after their parts, the
    # marts after every rule
    rules = [m for m in graph.models.values() if m.layer == "rules"]
    assert rules
    order = [m.name for m in graph.order()]
    last_rule = max(order.index(m.name) for m in rules)
    assert order.index("marts.outcomes") > last_rule
    assert order.index(RUN_PARAMETERS) < order.index("intermediate.int_rules_people")


def test_references_are_schema_qualified_tables_not_ctes() -> None:
    sql = ("WITH people AS (SELECT * FROM staging.cohort_members) "
           "SELECT * FROM people JOIN intermediate.int_rules_problems USING (family_id) "
           "WHERE EXISTS (SELECT 1 FROM marts.outcomes) AND x IN (SELECT 1 FROM range(3))")
    assert references(sql, "x.sql") == {
        "staging.cohort_members", "intermediate.int_rules_problems", "marts.outcomes"}


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "transforms"
    for rel, sql in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql, encoding="utf-8")
    return root


def test_a_new_file_is_placed_by_what_it_reads(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "staging/stg_things.sql": "SELECT * FROM raw.things",
        "marts/zz_first.sql": "SELECT * FROM intermediate.int_b",
        "intermediate/int_b.sql": "SELECT * FROM intermediate.int_a",
        "intermediate/int_a.sql": "SELECT * FROM staging.things, meta.run_parameters",
    })
    names = _check_order(model_graph(root))
    assert names.index("staging.things") < names.index("intermediate.int_a") \
        < names.index("intermediate.int_b") < names.index("marts.zz_first")
    assert model_graph(root)["intermediate.int_a"].depends_on == (
        "meta.run_parameters", "staging.things")


def test_a_cycle_fails_naming_the_file(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "intermediate/int_a.sql": "SELECT * FROM intermediate.int_b",
        "intermediate/int_b.sql": "SELECT * FROM intermediate.int_c",
        "intermediate/int_c.sql": "SELECT * FROM intermediate.int_a",
        "marts/fine.sql": "SELECT 1 AS one",
    })
    with pytest.raises(ModelGraphError, match=r"transforms/intermediate/int_[abc]\.sql: "
                                              r"models form a cycle") as info:
        model_graph(root)
    for name in ("int_a.sql", "int_b.sql", "int_c.sql"):
        assert name in str(info.value)
    assert "fine.sql" not in str(info.value)


def test_a_reference_to_no_model_fails_naming_the_file(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "intermediate/int_a.sql": "SELECT * FROM raw.things",
        "marts/report.sql": "SELECT * FROM intermediate.int_a JOIN intermediate.int_typo USING (x)",
    })
    with pytest.raises(ModelGraphError,
                       match=r"transforms/marts/report\.sql: model marts\.report reads "
                             r"intermediate\.int_typo, which is not a model"):
        model_graph(root)


def test_sql_that_does_not_parse_fails_naming_the_file(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"marts/broken.sql": "SELECT FROM WHERE ((("})
    with pytest.raises(ModelGraphError, match=r"transforms/marts/broken\.sql: .*does not parse"):
        model_graph(root)


def test_famlink_models_lists_every_model_file_in_build_order() -> None:
    done = famlink("models", "--plan", "thurrock", timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("model graph for plan thurrock")
    for rel in SQL_FILES:
        assert any(f"  {rel}  " in line for line in lines), rel
    # each listed model's dependencies were listed before it
    seen: set[str] = set()
    for line in lines[1:]:
        name = line.split()[1]
        deps = line.split(" <- ", 1)[1]
        for dep in [] if deps == "-" else deps.split(", "):
            assert dep in seen, (name, dep)
        seen.add(name)
    assert "rules.4.3.attended" in seen
    bad = famlink("models", "--plan", "atlantis", timeout=120)
    assert bad.returncode == 2 and "unknown plan" in bad.stdout + bad.stderr


def test_the_engine_builds_the_graph_from_one_parameters_table() -> None:
    w = World()
    w.family("F1", "2023-01-15", members=(("P1", "parent_carer", "1985-01-01"),))
    w.problem("F1", "4A", "P1")
    w.run("thurrock", "2024-06-30")
    graph = plan_graph(load_plan("thurrock"))
    tables = {f"{s}.{t}" for s, t in w.con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
    built = {m.name for m in graph.order(BUILT_LAYERS) if m.layer != "rules"}
    assert built <= tables
    # the rules' own tables were session tables, collected and dropped
    assert not [t for t in tables if t.startswith("main.rule_")]
    assert w.con.execute(f"SELECT plan, as_of, as_of_month FROM {RUN_PARAMETERS}").fetchall() \
        == [("thurrock", date(2024, 6, 30), "2024-06")]
    # no session variable carries the run's parameters
    assert w.con.execute("SELECT getvariable('as_of'), getvariable('plan')").fetchone() \
        == (None, None)
    assert w.con.execute("SELECT DISTINCT plan, as_of FROM marts.outcomes").fetchall() \
        == [("thurrock", date(2024, 6, 30))]


def test_staging_models_are_rendered_from_the_contract() -> None:
    rendered = rendered_staging()
    assert set((TRANSFORMS_DIR / "staging").glob("*.sql")) == set(rendered), \
        "a staging file for no extract, or an extract with none: python -m famlink.models " \
        "--write-staging"
    for path, text in rendered.items():
        assert path.read_text(encoding="utf-8") == text, \
            f"{path.name} is not the contract's rendering: python -m famlink.models --write-staging"
    delta = render_staging("court_orders", "delta", ["order_id", "person_ref"])
    assert "FROM raw.court_orders AS r" in delta
    assert "PARTITION BY order_id, person_ref" in delta
    # the as-of month is the run's, from the parameters table, never the reader's session
    assert references(delta, "x") == {"raw.court_orders", RUN_PARAMETERS}
    assert "getvariable" not in delta
    with pytest.raises(ModelGraphError, match=r"staging_weekly\.sql: no staging template"):
        render_staging("x", "weekly", ["k"])


def test_a_run_meets_a_graph_error_as_a_fatal_fault_naming_the_file(tmp_path: Path) -> None:
    from famlink.ingest.reading import FatalExtractError
    from famlink.models import ModelFileFault

    root = _tree(tmp_path, {"marts/report.sql": "SELECT * FROM intermediate.int_missing"})
    with pytest.raises(ModelGraphError) as info:
        model_graph(root)
    fault = ModelFileFault.of(info.value)
    assert isinstance(fault, FatalExtractError)
    assert fault.path.name == "report.sql"
    assert str(fault) == str(info.value) and "\n" not in str(fault)


# --------------------------------------------------------------- no session variables
SESSION_VARIABLE = re.compile(r"getvariable\s*\(|\b(SET|RESET)\s+VARIABLE\b|set_variable",
                              re.IGNORECASE)
PIPELINE_CODE = ("famlink", "rules", "transforms", "matchers", "flows")


def test_no_pipeline_sql_or_module_uses_session_variables() -> None:
    """Run parameters are read from meta.run_parameters by name: a session variable set in
    one connection is gone in the next (the published warehouse's readers, Prefect's
    workers), so no SQL file or module of the pipeline may set or read one."""
    found = []
    for top in PIPELINE_CODE:
        for path in sorted((REPO / top).rglob("*")):
            if path.suffix not in {".py", ".sql", ".j2", ".html"} or not path.is_file():
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if SESSION_VARIABLE.search(line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "session variables in the pipeline:\n" + "\n".join(found)


def test_the_session_variable_check_finds_one(tmp_path: Path) -> None:
    assert SESSION_VARIABLE.search("WHERE m <= coalesce(getvariable('as_of_month'), '9')")
    assert SESSION_VARIABLE.search('con.execute("set variable as_of = ?", [d])')
    assert not SESSION_VARIABLE.search("SELECT as_of_month FROM meta.run_parameters")


# --------------------------------------------------------------- the published warehouse
@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse whose raw tables hold a month after its run's as-of: ingest loaded
    2024-02, then the run (the latest, so published) was as at 2024-01-31."""
    root = tmp_path_factory.mktemp("published")
    drop, warehouse = write_drop(root / "drop"), root / "wh" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    loaded = famlink("ingest", "--extracts", str(drop), "--warehouse", str(warehouse),
                     "--as-of", "2024-02-29")
    assert loaded.returncode == 0, loaded.stderr
    ran = famlink(*run_args(drop, warehouse, as_of="2024-01-31"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return warehouse


READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SET VARIABLE as_of_month = '2024-02'")   # a reader's session cannot re-point them
print(con.execute("SELECT lead_worker FROM staging.cohort_families").fetchall())
print(con.execute("SELECT count(*) FROM analyst.families").fetchall())
"""


def test_a_later_reader_sees_the_runs_as_of_in_staging_and_analyst_views(
        published: Path) -> None:
    con = duckdb.connect(str(published), read_only=True)
    try:   # the later month is there, in raw
        assert con.execute("SELECT DISTINCT _month FROM raw.cohort_families ORDER BY 1"
                           ).fetchall() == [("2024-01",), ("2024-02",)]
        assert con.execute(f"SELECT as_of, as_of_month FROM {RUN_PARAMETERS}").fetchall() \
            == [(date(2024, 1, 31), "2024-01")]
        families = con.execute("SELECT count(DISTINCT family_id) FROM marts.family_problems"
                               ).fetchone()[0]
    finally:
        con.close()
    # famlink query, a new read-only process: the staging view is as at the run's month
    staged = famlink("query", "SELECT lead_worker FROM staging.cohort_families",
                     "--warehouse", str(published), "--identifiable")
    assert staged.returncode == 0, staged.stderr
    assert "2024-01" in staged.stdout and "2024-02" not in staged.stdout
    # the analyst layer, sealed (no file access), agrees with the marts of the run
    counted = famlink("query", "SELECT count(*) AS n FROM families", "--warehouse",
                      str(published))
    assert counted.returncode == 0, counted.stderr
    assert re.search(rf"│\s*{families}\s*│", counted.stdout), counted.stdout
    # a reader who sets the old session variable still sees the run's records
    out = subprocess.run([sys.executable, "-c", READER, str(published)], capture_output=True,
                         text=True, check=True, timeout=120).stdout.splitlines()
    assert out == ["[('2024-01',)]", f"[({families},)]"]


def test_query_as_of_another_month_is_refused_in_one_line(published: Path) -> None:
    same = famlink("query", "SELECT count(*) FROM families", "--warehouse", str(published),
                   "--as-of", "2024-01-15")
    assert same.returncode == 0, same.stderr
    other = famlink("query", "SELECT count(*) FROM families", "--warehouse", str(published),
                    "--as-of", "2024-02-29")
    assert other.returncode == 2
    assert other.stderr.strip().count("\n") == 0 and "built as at 2024-01-31" in other.stderr


# --------------------------------------------------------------- templates take values
LEAF_TEMPLATES = ("attendance.sql", "count.sql", "employment.sql", "episode.sql",
                  "evidence.sql", "family_star.sql", "score.sql")


@pytest.mark.parametrize("plan_name", PLANS)
def test_every_rule_runs_its_templates_text_with_only_values_bound(plan_name: str) -> None:
    """No SQL text comes from the plan: each rule runs its kind's template as written, and
    what differs between two rules of a kind is the values DuckDB binds to it."""
    by_template: dict[str, set[str]] = {}
    for c in _compiled_rules(load_plan(plan_name)):
        for bound in (c.results, c.evidence):
            by_template.setdefault(bound.origin, set()).add(bound.sql)
            for name, value in bound.values.items():
                items = value if isinstance(value, list) else [value]
                assert all(v is None or isinstance(v, str | int | float) for v in items), \
                    (c.rule.id, name, value)
    for origin, texts in by_template.items():
        assert len(texts) <= 2, f"{origin}: rules run different SQL texts"  # results, evidence
        head = (REPO / origin).read_text(encoding="utf-8").split("-- @results", 1)[0]
        assert all(text.startswith(head) for text in texts), origin


def test_the_rules_targets_are_one_model_every_template_reads() -> None:
    for name in LEAF_TEMPLATES:
        refs = _template_references(name)
        assert "intermediate.int_rules_targets" in refs, name
        assert "intermediate.int_rules_problems" not in refs, \
            f"{name} selects the problems itself: read intermediate.int_rules_targets"
    graph = plan_graph(load_plan("thurrock"))
    assert graph["intermediate.int_rules_targets"].depends_on == (
        "intermediate.int_rules_problems", "intermediate.int_rules_rule_indicators")
    w = World()
    w.family("F1", "2023-01-15", members=(("P1", "parent_carer", "1985-01-01"),))
    w.problem("F1", "4A", "P1")
    w.run("thurrock", "2024-06-30")
    expected = {(rid, "4A") for rid, inds in rule_targets(load_plan("thurrock")).items()
                if "4A" in inds}
    got = set(w.con.execute("SELECT outcome_id, indicator FROM intermediate.int_rules_targets "
                            "WHERE family_id = 'F1'").fetchall())
    assert got == expected and expected


def test_the_extract_rows_model_counts_every_extract_a_rule_can_rest_on() -> None:
    graph = plan_graph(load_plan("countywide"))
    model = graph["intermediate.int_rules_extract_rows"]
    assert model.path == TRANSFORMS_DIR / "intermediate" / "int_rules_extract_rows.sql"
    assert set(model.depends_on) == {f"staging.{e}" for e in data_extracts()}
    for plan_name in PLANS:
        for rule in load_plan(plan_name).rules:
            assert set(_rule_extracts(rule)) <= set(data_extracts()), (plan_name, rule.id)
