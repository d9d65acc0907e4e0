"""The generator is apart from the product: the pipeline never imports it.

famlink_generator (generator/ in the repository) is used by the tests, the
benchmarks, ``famlink generate`` and ``make demo``. The pipeline packages import
it nowhere, except the ``generate`` command, which imports it inside the command
and says in one line when it is not installed.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ("famlink", "flows", "matchers", "rules", "transforms", "expectations")
GENERATOR = "famlink_generator"
# the one import allowed: inside the generate command's body
ALLOWED = {("famlink/cli.py", "generate")}


def _is_generator(module: str | None) -> bool:
    return bool(module) and (module == GENERATOR or module.startswith(f"{GENERATOR}.")
                             or module == "famlink.generate"
                             or module.startswith("famlink.generate."))


def generator_imports(source: str, path: str) -> list[tuple[str, str | None, int]]:
    """(path, enclosing function or None, line) of each import of the generator in source.

    Import statements, and importlib.import_module / __import__ of a constant name.
    """
    found: list[tuple[str, str | None, int]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) \
                else function
            modules: list[str | None] = []
            if isinstance(child, ast.Import):
                modules = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0:
                modules = [child.module]
                if child.module == "famlink":   # from famlink import generate
                    modules += [f"famlink.{alias.name}" for alias in child.names]
            elif isinstance(child, ast.Call) and child.args and isinstance(
                    child.args[0], ast.Constant) and isinstance(child.args[0].value, str):
                called = child.func
                name = called.attr if isinstance(called, ast.Attribute) else getattr(
                    called, "id", None)
                if name in ("import_module", "__import__"):
                    modules = [child.args[0].value]
            if any(_is_generator(m) for m in modules):
                found.append((path, function, child.lineno))
            visit(child, inner)

    visit(ast.parse(source), None)
    return found


def test_the_check_finds_an_import_of_the_generator() -> None:
    """The walker itself: each form of import is found, with its function."""
    source = ("import famlink_generator\n"
              "from famlink_generator.ids import nhs_valid\n"
              "from famlink import generate\n"
              "def f():\n    import importlib\n"
              "    importlib.import_module('famlink_generator.county')\n"
              "import famlink_generatorx\n")
    assert generator_imports(source, "x.py") == [
        ("x.py", None, 1), ("x.py", None, 2), ("x.py", None, 3), ("x.py", "f", 6)]


def test_no_pipeline_module_imports_the_generator() -> None:
    """Walk every module of the pipeline packages: only the generate command imports it."""
    found: list[tuple[str, str | None, int]] = []
    files = [p for pkg in PIPELINE for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 40, files
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        found += generator_imports(path.read_text(encoding="utf-8"), rel)
    outside = [f"{p}:{line}" for p, function, line in found if (p, function) not in ALLOWED]
    assert outside == [], f"the pipeline imports the generator at {outside}"
    assert [(p, function) for p, function, _ in found] == [("famlink/cli.py", "generate")]
    assert not (ROOT / "famlink" / "generate").exists(), "famlink/generate is back"


def _python(code: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp, timeout=300,
                          env={**os.environ, "COLUMNS": "200", "DO_NOT_TRACK": "1"})


def test_importing_the_pipeline_loads_no_generator(tmp_path: Path) -> None:
    """A real second process imports every pipeline module (the CLI too): no generator
    module is loaded, though it is installed and importable there."""
    code = f"""
import importlib, json, pkgutil, sys
names = []
for pkg in {PIPELINE!r}:
    names.append(importlib.import_module(pkg).__name__)
    for info in pkgutil.walk_packages(sys.modules[pkg].__path__, pkg + "."):
        if not info.name.endswith("__main__"):
            names.append(importlib.import_module(info.name).__name__)
loaded = sorted(m for m in sys.modules if m.split(".")[0] == {GENERATOR!r})
import famlink_generator
print(json.dumps({{"modules": names, "loaded": loaded,
                  "importable": famlink_generator.__name__}}))
"""
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.splitlines()[-1])
    assert {"famlink.pipeline", "famlink.cli", "flows.monthly", "matchers.linkage"} <= set(
        seen["modules"])
    assert seen["loaded"] == []
    assert seen["importable"] == GENERATOR


def test_generate_without_the_generator_is_one_line(tmp_path: Path) -> None:
    """famlink generate where the generator is not installed: one error line, exit 1,
    nothing written."""
    out = tmp_path / "drop"
    code = (f"import sys; sys.modules[{GENERATOR!r}] = None\n"   # as if not installed
            "from famlink.cli import main\n"
            f"sys.argv = ['famlink', 'generate', '--out', {str(out)!r}]\n"
            "main()\n")
    result = _python(code, tmp_path)
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: famlink generate needs the generator package")
    assert "pip install -e ./generator" in lines[0]
    assert not out.exists()


def test_the_generator_reads_famlinks_contract(tmp_path: Path) -> None:
    """It writes to famlink's copy of the contract, found from the installed famlink or,
    with no famlink, in the repository beside generator/ (without importing the rules)."""
    code = ("import json, sys\n"
            "hide = sys.argv[1] == 'hide'\n"
            "if hide: sys.modules['famlink'] = None\n"
            "from famlink_generator.writer import contract, contract_dir\n"
            "print(json.dumps([str(contract_dir()), len(contract()),\n"
            "                  sorted(m for m in sys.modules if m.startswith(('famlink.',"
            " 'rules')))]))\n")
    contract = ROOT / "famlink" / "contract"
    for mode in ("installed", "hide"):
        result = subprocess.run([sys.executable, "-c", code, mode], capture_output=True,
                                text=True, cwd=tmp_path, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        where, files, loaded = json.loads(result.stdout)
        assert Path(where).resolve() == contract.resolve(), mode
        assert files == len(yaml.safe_load((contract / "extracts.yaml").read_text())["files"])
        assert loaded == []
