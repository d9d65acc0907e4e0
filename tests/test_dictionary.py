"""Every table, view and column famlink writes is described, from one source."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from safety_support import famlink

from famlink.dictionary import (
    DOC_PATH,
    DOCUMENTED_SCHEMAS,
    load_dictionary,
    render_markdown,
    undocumented,
    warehouse_objects,
)
from famlink.pipeline import RunRequest
from flows.monthly import run_monthly_local

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse from one month of the sample: every schema's tables exist after a run."""
    root = tmp_path_factory.mktemp("dictionary")
    shutil.copytree(SAMPLE / "2023-01", root / "drop" / "2023-01")
    path = root / "w.duckdb"
    run_monthly_local(RunRequest(extracts=root / "drop", warehouse=path, plan="countywide",
                                 as_of=date(2023, 1, 31)))
    return path


def test_every_table_view_and_column_has_a_comment(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    objects = warehouse_objects(con)
    assert {t.split(".")[0] for t, _, _ in objects} == set(DOCUMENTED_SCHEMAS)
    missing = undocumented(con)
    assert not missing, ("not in transforms/dictionary.yaml (add them, then "
                         "python -m famlink.dictionary --write): " + ", ".join(missing))


def test_the_comments_are_the_dictionarys(warehouse: Path) -> None:
    book = load_dictionary()
    con = duckdb.connect(str(warehouse), read_only=True)
    (view_comment,) = con.execute("SELECT comment FROM duckdb_views() WHERE schema_name = "
                                  "'analyst' AND view_name = 'people'").fetchone()
    assert view_comment == book.tables["analyst.people"].description
    (column_comment,) = con.execute(
        "SELECT comment FROM duckdb_columns() WHERE schema_name = 'claims' AND "
        "table_name = 'events' AND column_name = 'family_id'").fetchone()
    assert column_comment == book.columns["family_id"]


def test_the_dictionary_describes_no_column_the_warehouse_lacks(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    held: dict[str, set[str]] = {}
    for table, column, _ in warehouse_objects(con):
        held.setdefault(table, set()).add(column)
    book = load_dictionary()
    stale = [f"{t}.{c}" for t, entry in book.tables.items() if t in held
             for c in entry.columns if c not in held[t]]
    assert not stale, f"described but not in the warehouse: {stale}"
    assert not [t for t in book.tables if t not in held], "tables the warehouse lacks"
    undescribed = [f"{t}.{c}" for t, entry in book.tables.items() for c in entry.columns
                   if not book.column(t, c)]
    assert not undescribed, f"listed without a description: {undescribed}"


def test_a_new_column_without_a_description_is_named(warehouse: Path, tmp_path: Path) -> None:
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(warehouse, copy)
    con = duckdb.connect(str(copy))
    con.execute("ALTER TABLE marts.outcomes ADD COLUMN new_measure INTEGER")
    con.execute("CREATE TABLE linkage.new_table (x INTEGER)")
    assert undocumented(con) == ["linkage.new_table", "linkage.new_table.x",
                                 "marts.outcomes.new_measure"]


def test_docs_data_dictionary_is_rendered_from_the_dictionary() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render_markdown(), (
        "docs/data_dictionary.md is stale: run python -m famlink.dictionary --write")


def test_describe_lists_tables_and_one_tables_columns() -> None:
    listing = famlink("describe")
    assert listing.returncode == 0, listing.stderr
    for table in ("meta.deliveries", "claims.events", "analyst.people", "linkage.record_links"):
        assert table in listing.stdout
    people = famlink("describe", "people")
    assert people.returncode == 0, people.stderr
    assert people.stdout.startswith("analyst.people: ")
    for column in ("person_key", "age_band", "0-4, 5-10"):
        assert column in people.stdout
    unknown = famlink("describe", "staging.nope")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: no table staging.nope")
