"""The model graph: every SQL model under ``transforms/`` and every model the rules
compile to, ordered by the tables each one reads.

A model's SQL names the models it reads as ``schema.model`` (``staging.cohort_members``,
``intermediate.int_rules_people``). The references are parsed with sqlglot and the
build order is a topological sort of them (graphlib), so a new file is picked up
and placed by what it reads, not by a list. A reference into a model schema
(staging, intermediate, marts, analyst) that names no model, and a cycle, are
errors naming the file. Tables outside the graph (``raw.*``, ``linkage.*``,
``meta.deliveries``, ``claims.*``) are sources: written by ingest, linkage and
claims, read here.

Run parameters (as-of date, plan, the plan's settings the SQL needs) live in one
table, ``meta.run_parameters``, written by :func:`write_run_parameters`; models
select from it instead of reading session variables.
"""

from __future__ import annotations

import functools
import graphlib
import string
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from famlink.ingest.reading import FatalExtractError

TRANSFORMS_DIR = Path(__file__).resolve().parent.parent / "transforms"
# Folders of transforms/, in the order a listing shows a layer's models.
FILE_LAYERS = ("staging", "intermediate", "marts", "analyst")
LAYER_PREFIXES = {"staging": "stg_", "intermediate": "", "marts": "", "analyst": ""}
# Schemas whose every table is a model: a reference there must name one.
MODEL_SCHEMAS = frozenset(FILE_LAYERS)
LAYER_RANK = {"meta": 0, "staging": 1, "intermediate": 2, "rules": 3, "marts": 4, "analyst": 5}
RUN_PARAMETERS = "meta.run_parameters"


class ModelGraphError(ValueError):
    """A model file that does not parse, names a model that does not exist, or
    is part of a cycle (the message names the file)."""


class ModelFileFault(FatalExtractError):
    """A model graph error met by a run: like a fatal extract fault, the run stops
    with one line naming the file, and the published warehouse is left as it was."""

    @classmethod
    def of(cls, exc: ModelGraphError) -> ModelFileFault:
        origin, _, fault = str(exc).partition(": ")
        return cls(Path(origin), fault)


@dataclass(frozen=True)
class Model:
    """One node of the graph: a SQL file, or a table the engine compiles or writes."""

    name: str  # schema.table, e.g. intermediate.int_rules_people
    layer: str
    depends_on: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    path: Path | None = None  # the SQL file, for file models
    kind: str = "sql"  # sql (a file), compiled (SQL made from the plan), written (by code)
    sql: str | None = None
    defined_in: str | None = None  # for a model made in code: what it is made from

    @property
    def origin(self) -> str:
        """Where the model is defined, for error messages and the listing."""
        if self.defined_in is not None:
            return self.defined_in
        if self.path is not None:
            try:
                return str(self.path.relative_to(TRANSFORMS_DIR.parent))
            except ValueError:
                return str(self.path)
        return f"<{self.kind}>"


@dataclass
class ModelGraph:
    """Models by name, with their build order."""

    models: dict[str, Model] = field(default_factory=dict)

    def order(self, layers: Iterable[str] | None = None) -> list[Model]:
        """Every model after the models it reads (ties broken by layer, then name)."""
        wanted = set(layers) if layers is not None else None
        return [m for m in build_order(self.models.values())
                if wanted is None or m.layer in wanted]

    def __getitem__(self, name: str) -> Model:
        return self.models[name]


def model_name(layer: str, file_name: str) -> str:
    """``stg_yot_offences.sql`` in staging -> ``staging.yot_offences``."""
    stem = file_name.removesuffix(".sql")
    prefix = LAYER_PREFIXES.get(layer, "")
    return f"{layer}.{stem.removeprefix(prefix) if prefix else stem}"


def references(sql: str, origin: str) -> set[str]:
    """The ``schema.table`` names the SQL reads (models are always named with their schema)."""
    try:
        return set(_references(sql))
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "parse error"
        raise ModelGraphError(f"{origin}: the SQL does not parse: {first}") from None


@functools.lru_cache(maxsize=512)
def _references(sql: str) -> frozenset[str]:
    """Parsed once per text in a process (a run re-evaluates the plan under review)."""
    trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    found: set[str] = set()
    for tree in trees:
        for table in tree.find_all(exp.Table):
            if not table.name:
                continue
            if not table.db:  # a CTE, a table function or a temp table: not a model
                continue
            found.add(f"{table.db}.{table.name}".lower())
    return frozenset(found)


def file_model(path: Path, layer: str) -> Model:
    """A model from its SQL file: the name from the file, the references from the SQL."""
    sql = path.read_text(encoding="utf-8")
    return Model(name=model_name(layer, path.name), layer=layer, path=path, kind="sql",
                 sql=sql, depends_on=tuple(sorted(references(sql, _rel(path)))))


def sql_model(name: str, layer: str, sql: str, defined_in: str,
              extra: Iterable[str] = (), refs: Iterable[str] | None = None) -> Model:
    """A model whose SQL is made in code (from the plan); its references parsed like a
    file's, unless the caller has them already (``refs``, parsed from the same template)."""
    found = set(references(sql, defined_in) if refs is None else refs) | set(extra)
    return Model(name=name, layer=layer, kind="compiled", sql=sql, defined_in=defined_in,
                 depends_on=tuple(sorted(found)))


def written_model(name: str, layer: str, defined_in: str, reads: Iterable[str] = ()) -> Model:
    """A table written by code (rows from the plan, the vocabulary, the drop folders)."""
    return Model(name=name, layer=layer, kind="written", defined_in=defined_in,
                 depends_on=tuple(sorted(set(reads))))


def file_models(root: Path = TRANSFORMS_DIR) -> list[Model]:
    """Every ``<layer>/*.sql`` under ``root`` (new files are picked up by being there)."""
    out = []
    for layer in FILE_LAYERS:
        folder = root / layer
        if folder.is_dir():
            out += [file_model(p, layer) for p in sorted(folder.glob("*.sql"))]
    return out


def build_order(models: Iterable[Model]) -> list[Model]:
    """Topological order of the models by their references.

    Dependencies that are not models are split off as sources, except in a model
    schema, where a name that is no model is an error naming the referring file.
    """
    by_name: dict[str, Model] = {}
    for m in models:
        if m.name in by_name:
            raise ModelGraphError(
                f"{m.origin}: model {m.name} is defined twice (also {by_name[m.name].origin})")
        by_name[m.name] = m
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for m in by_name.values():
        deps = []
        for ref in m.depends_on:
            if ref in by_name:
                deps.append(ref)
            elif ref.partition(".")[0] in MODEL_SCHEMAS:
                raise ModelGraphError(f"{m.origin}: model {m.name} reads {ref}, "
                                      "which is not a model (no such file)")
        sorter.add(m.name, *deps)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        files = ", ".join(dict.fromkeys(by_name[n].origin for n in cycle if n in by_name))
        raise ModelGraphError(
            f"{by_name[cycle[0]].origin}: models form a cycle: {' -> '.join(cycle)} "
            f"(files: {files})") from None
    out: list[Model] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(),
                       key=lambda n: (LAYER_RANK.get(by_name[n].layer, 9), n))
        out += [by_name[n] for n in ready]
        sorter.done(*ready)
    return out


def layer_order(layer: str, root: Path = TRANSFORMS_DIR) -> list[Model]:
    """One layer's file models in build order (views are bound when created, so one that
    reads another of its layer comes after it); the layers it reads are built already."""
    models = [m for m in file_models(root) if m.layer == layer]
    own = [replace(m, depends_on=tuple(d for d in m.depends_on
                                       if d.partition(".")[0] == layer)) for m in models]
    return build_order(own)


def sources(model: Model, graph: ModelGraph) -> list[str]:
    """The tables a model reads that no model makes."""
    return [r for r in model.depends_on if r not in graph.models]


def model_graph(root: Path = TRANSFORMS_DIR, extra: Iterable[Model] = ()) -> ModelGraph:
    """The file models plus the given compiled/written ones, checked and ordered."""
    graph = ModelGraph({m.name: m for m in [run_parameters_model(), *file_models(root)]})
    for m in extra:
        if m.name in graph.models:
            raise ModelGraphError(f"{graph.models[m.name].origin}: model {m.name} is also "
                                  f"made by the engine ({m.kind})")
        graph.models[m.name] = m
    build_order(graph.models.values())  # raises on a missing reference or a cycle
    return graph


# --------------------------------------------------------------- run parameters
_RUN_PARAMETER_COLUMNS = (
    "plan VARCHAR, as_of DATE, as_of_month VARCHAR, identification_grace_days INTEGER, "
    "plan_codes VARCHAR[], out_of_work_benefits VARCHAR[], out_of_work_uc_regimes VARCHAR[], "
    "snapshot_extracts VARCHAR[]"
)


def run_parameters_model() -> Model:
    return written_model(RUN_PARAMETERS, "meta", "famlink/models.py write_run_parameters")


def ensure_run_parameters(con: duckdb.DuckDBPyConnection) -> None:
    """The table, empty if no build has written it yet (a view over it can then be
    created; with no row the staging views show every delivery)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"CREATE TABLE IF NOT EXISTS {RUN_PARAMETERS} ({_RUN_PARAMETER_COLUMNS})")


def write_run_parameters(
    con: duckdb.DuckDBPyConnection, *, plan: str, as_of: date,
    identification_grace_days: int, plan_codes: Iterable[str],
    out_of_work_benefits: Iterable[str], out_of_work_uc_regimes: Iterable[str],
    snapshot_extracts: Iterable[str],
) -> None:
    """The one row every model reads its run's parameters from (replaced each build).

    It is a table in the warehouse, not session state: a view over it (staging,
    analyst) gives a later reader of the published warehouse the run's as-of."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"CREATE OR REPLACE TABLE {RUN_PARAMETERS} ({_RUN_PARAMETER_COLUMNS})")
    con.execute(
        f"INSERT INTO {RUN_PARAMETERS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [plan, as_of, as_of.strftime("%Y-%m"), identification_grace_days,
         sorted(plan_codes), list(out_of_work_benefits), list(out_of_work_uc_regimes),
         sorted(snapshot_extracts)])


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(TRANSFORMS_DIR.parent))
    except ValueError:
        return str(path)


# --------------------------------------------------------------- staging from the contract
STAGING_TEMPLATES = TRANSFORMS_DIR / "templates"


def render_staging(name: str, delivery: str, key: Iterable[str]) -> str:
    """A staging model from the contract: its extract, snapshot or delta, and its key."""
    template = STAGING_TEMPLATES / f"staging_{delivery}.sql"
    if not template.is_file():
        raise ModelGraphError(f"{_rel(template)}: no staging template for delivery {delivery!r}")
    text = template.read_text(encoding="utf-8")
    return string.Template(text).substitute(name=name, key=", ".join(key))


def rendered_staging() -> dict[Path, str]:
    """Every extract's staging file, as the contract renders it."""
    from famlink.contract import load_contract

    root = TRANSFORMS_DIR / "staging"
    return {root / f"{LAYER_PREFIXES['staging']}{s.name}.sql":
            render_staging(s.name, s.delivery, s.key) for s in load_contract().files.values()}


def write_staging() -> list[Path]:
    """(Re)write the staging files from the contract; return the ones that changed."""
    changed = []
    for path, text in rendered_staging().items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":  # python -m famlink.models --write-staging
    import sys

    if sys.argv[1:] != ["--write-staging"]:
        sys.exit("usage: python -m famlink.models --write-staging")
    for path in write_staging():
        print(f"wrote {_rel(path)}")
