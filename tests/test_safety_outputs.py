"""Files that leave famlink are safe to open, and printing data never fails a run."""

from __future__ import annotations

import csv
import io
import stat
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook
from rich.console import Console
from safety_support import famlink
from test_claims_support import PLAN, new_warehouse

from famlink.pipeline import RunRequest, RunSummary
from famlink.report import RunFigures, print_run_summary

AS_OF = "2024-06-30"
HOSTILE = ['=HYPERLINK("http://x.example","click")', "+44 1234", "-2+3", "@SUM(A1)",
           "\tTAB", "\rCR"]


@pytest.fixture
def claimed(tmp_path: Path) -> Path:
    """A ledger whose claimed families have ids a partner's file should never have sent."""
    from famlink.claims import record_due_claims

    path = tmp_path / "wh.duckdb"
    con, m = new_warehouse(path)
    for family_id in [*HOSTILE, "FAM000001"]:
        m.family(family_id, "2023-01-10", {"1A": None, "2A": None})
        m.achieved(AS_OF, family_id, {"1A": "2023-11-01", "2A": "2023-12-01"})
    assert record_due_claims(con, PLAN, date.fromisoformat(AS_OF)).new_claims == 7
    con.execute("INSERT INTO meta.deliveries VALUES (1, 1, '2024-01', 'cohort_members.csv', "
                "'cohort_members', 'x', 'loaded', 1, 0, 1, 0, now())")
    con.execute("CREATE TABLE meta.rejects (delivery_id BIGINT, month VARCHAR, file VARCHAR, "
                "row_number BIGINT, \"column\" VARCHAR, reason VARCHAR, value VARCHAR, "
                "severity VARCHAR)")
    con.execute("INSERT INTO meta.rejects VALUES (1, '2024-01', '=cmd.csv', 2, 'dob', "
                "'-not a date', 'x', 'rejected')")
    con.close()
    return path


def test_claims_csv_neutralises_formulas(claimed: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "claims.csv"
    result = famlink("claims", "--warehouse", str(claimed), "--as-of", AS_OF, "--out", str(out))
    assert result.returncode == 0, result.stderr
    with out.open(newline="", encoding="utf-8") as fh:
        ids = [row["family_id"] for row in csv.DictReader(fh)]
    assert sorted(ids) == sorted(["'" + v for v in HOSTILE] + ["FAM000001"])
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700


def test_return_csv_and_xlsx_hold_text_never_formulas(claimed: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "return"
    result = famlink("return", "--warehouse", str(claimed), "--as-of", AS_OF,
                     "--out-dir", str(out_dir))
    assert result.returncode == 0, result.stderr
    csv_path, xlsx_path, totals_path = sorted(out_dir.iterdir())
    with csv_path.open(newline="", encoding="utf-8") as fh:
        ids = [row["family_id"] for row in csv.DictReader(fh)]
    assert sorted(ids) == sorted(["'" + v for v in HOSTILE] + ["FAM000001"])  # no TOTAL row
    assert totals_path.name.endswith("_totals.csv")
    book_ = load_workbook(xlsx_path)
    ws = book_["Claims"]
    hostile = {v.replace("\r", "\n") for v in HOSTILE}   # XML reads a lone CR back as LF
    cells = [c for row in ws.iter_rows() for c in row if c.value in hostile]
    assert sorted(c.value for c in cells) == sorted(hostile)      # the values, unchanged
    assert {c.data_type for c in cells} == {"s"}                  # as text
    formulas = [c.value for s in book_.worksheets for row in s.iter_rows() for c in row
                if c.data_type == "f"]
    assert formulas and all(f.startswith(("=SUM(", "=COUNTIF(", "=COUNTA(")) for f in formulas)
    with zipfile.ZipFile(xlsx_path) as book:
        names = book.namelist()
        data_sheets = [book.read(n).decode() for n in names
                       if n.startswith("xl/worksheets/sheet") and not n.endswith("sheet1.xml")]
        summary = book.read("xl/worksheets/sheet1.xml").decode()
    assert all("<f>" not in s and "<f " not in s for s in data_sheets)  # no formula in data
    assert "<f>" in summary                                         # the totals are formulas
    assert any('<is><t>=HYPERLINK(' in s for s in data_sheets)      # an inline string
    assert stat.S_IMODE(out_dir.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in (csv_path, xlsx_path, totals_path)} == {0o600}


def test_rejects_csv_neutralises_formulas(claimed: Path, tmp_path: Path) -> None:
    out = tmp_path / "rejects.csv"
    result = famlink("rejects", "--warehouse", str(claimed), "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "month,file,row_number,column,reason,severity"   # severity last
    assert lines[1] == "2024-01,'=cmd.csv,2,dob,'-not a date,rejected"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_run_summary_prints_markup_in_the_data_as_it_is(tmp_path: Path) -> None:
    request = RunRequest(extracts=tmp_path, warehouse=tmp_path / "w.duckdb", plan=PLAN,
                         as_of=date(2024, 6, 30))
    summary = RunSummary(request=request, ingest=None)
    summary.figures = RunFigures(families=1, statuses=[("achieved[/]", 2)],
                                 indicators=[("9[/red]", 1), ("1A", 1)])
    buf = io.StringIO()
    print_run_summary(summary, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    assert "indicator 9[/red] (1 families)" in text and "achieved[/]" in text


def test_summary_read_back_from_a_warehouse_without_marts(tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "w.duckdb")).close()
    request = RunRequest(extracts=tmp_path, warehouse=tmp_path / "w.duckdb", plan=PLAN,
                         as_of=date(2024, 6, 30))
    buf = io.StringIO()
    print_run_summary(RunSummary(request=request, ingest=None),
                      Console(file=buf, width=200, color_system=None))
    assert "families in the cohort" in buf.getvalue()
