"""``famlink query`` only reads the warehouse: no files written or read, nothing attached."""

from __future__ import annotations

import stat
from pathlib import Path

import duckdb
import pytest
from safety_support import digest, error_line, famlink


@pytest.fixture
def warehouses(tmp_path: Path) -> tuple[Path, Path]:
    """The warehouse queried, and another one beside it with a ledger to protect."""
    mine, other = tmp_path / "w.duckdb", tmp_path / "other.duckdb"
    for path in (mine, other):
        con = duckdb.connect(str(path))
        con.execute("CREATE SCHEMA claims; CREATE TABLE claims.events AS "
                    "SELECT 'FAM000001' AS family_id, '=1+1' AS note")
        con.close()
    (tmp_path / "secret.txt").write_text("not for the warehouse\n")
    return mine, other


REFUSED = {
    "copy_to": "COPY (FROM claims.events) TO '{tmp}/out.csv'",
    "attach_and_delete": ("ATTACH '{tmp}/other.duckdb' AS o (READ_WRITE); "
                          "DELETE FROM o.claims.events"),
    "export": "EXPORT DATABASE '{tmp}/dump'",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "read_text": "SELECT * FROM read_text('{tmp}/secret.txt')",
    "read_csv": "SELECT * FROM read_csv('{tmp}/secret.txt')",
    "unlock": "SET enable_external_access = true",
    "write": "DELETE FROM claims.events",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_statement_that_reaches_outside_is_refused_in_one_line(
        warehouses: tuple[Path, Path], tmp_path: Path, name: str) -> None:
    mine, other = warehouses
    before = {p.name for p in tmp_path.iterdir()}
    digests = digest(mine), digest(other)
    result = famlink("query", REFUSED[name].format(tmp=tmp_path), "--warehouse", str(mine),
                     "--identifiable")
    assert result.returncode != 0
    assert error_line(result).startswith("error: query refused: "), result.stderr
    assert "not for the warehouse" not in result.stdout + result.stderr
    assert {p.name for p in tmp_path.iterdir()} == before        # no file written
    assert (digest(mine), digest(other)) == digests               # no warehouse changed


def test_any_sql_error_is_one_line(warehouses: tuple[Path, Path]) -> None:
    result = famlink("query", "SELEC nonsense", "--warehouse", str(warehouses[0]),
                     "--identifiable")
    assert result.returncode != 0
    assert error_line(result).startswith("error: query failed: ")


def test_a_query_reads_and_writes_its_csv_safely(warehouses: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    shown = famlink("query", "SELECT family_id, '[/red]' AS odd FROM claims.events",
                    "--warehouse", str(warehouses[0]), "--identifiable")
    assert shown.returncode == 0, shown.stderr
    assert "FAM000001" in shown.stdout and "[/red]" in shown.stdout
    out = tmp_path / "result" / "events.csv"
    written = famlink("query", "FROM claims.events", "--warehouse", str(warehouses[0]),
                      "--out", str(out), "--identifiable")
    assert written.returncode == 0, written.stderr
    assert out.read_text().splitlines() == ["family_id,note", "FAM000001,'=1+1"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
