"""The run report in a real browser: headless Chromium draws it; its figures are the warehouse's.

One warehouse, built by real ``famlink run`` processes on six months of data/sample:
a first run, a withdrawal, and a second run at the same as-of (what changed: a
withdrawal, no new claims, no new rows). Chromium takes a screenshot (decoded
here with zlib: it must not be blank and must show the charts' colours) and
dumps the DOM, whose ``data-*`` figures are compared with SQL on the warehouse.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from safety_support import famlink

from famlink.claims.returns import PAYMENT_GBP

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
MONTHS = ["2023-01", "2023-02", "2023-03", "2023-04", "2023-05", "2023-06"]
AS_OF = "2023-06-30"
WIDTH = 1280
BLUE, GREEN = (0x4A, 0x7A, 0xB5), (0x2E, 0x7D, 0x32)   # the histogram's and the links' bars


def chromium() -> str:
    """Debian's chromium (or Ubuntu's chromium-browser); CI installs it (make browser)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("FAMLINK_REQUIRE_BROWSER"):
        pytest.fail("chromium is not installed (make browser installs it)")
    pytest.skip("chromium is not installed: make browser (as root) installs it")


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", f"--user-data-dir={profile}",
         f"--window-size={WIDTH},2000", *args, page.resolve().as_uri()],
        capture_output=True, timeout=120, check=False)


PROBE = ("<script>document.body.setAttribute('data-scroll-width',"
         "document.documentElement.scrollWidth)</script></body>")
_doms: dict[tuple[Path, int], str] = {}


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM Chromium built from the page, with the page's laid-out width as
    ``data-scroll-width`` on the body (read by a probe script added to a copy;
    the report itself has no script). One browser start per page and version."""
    key = (page, page.stat().st_mtime_ns)
    if key not in _doms:
        probe = profile.parent / f"probe_{page.name}"
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE),
                         encoding="utf-8")
        done = browse(probe, profile, "--dump-dom")
        assert done.returncode == 0, done.stderr[-2000:]
        _doms[key] = done.stdout.decode("utf-8")
    return _doms[key]


def screenshot(page: Path, png: Path, profile: Path) -> Path:
    done = browse(page, profile, f"--screenshot={png}")
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
    return png


def decode_png(path: Path) -> np.ndarray:
    """An 8-bit RGB or RGBA PNG as a (height, width, 3) array: zlib and the five row filters."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, step = 8, b"", 0, 0, 3
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            step = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    stride = width * step
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].copy()
        if kind == 1:      # sub: a running sum along each channel (uint8 wraps mod 256)
            line = np.cumsum(line.reshape(width, step), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:    # up
            line = line + previous
        elif kind in (3, 4):
            row, up = bytearray(line.tobytes()), previous.tobytes()
            for i in range(stride):
                a = row[i - step] if i >= step else 0
                b, c = up[i], (up[i - step] if i >= step else 0)
                if kind == 3:
                    row[i] = (row[i] + (a + b) // 2) & 0xFF
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)
                              ) & 0xFF
            line = np.frombuffer(bytes(row), dtype=np.uint8)
        out[y] = line
        previous = out[y]
    return out.reshape(height, width, step)[:, :, :3]


class Figures(HTMLParser):
    """The page's marked figures: data-figure, data-header, rows of data-* tables."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.header: dict[str, str] = {}
        self.rows: dict[str, dict[str, dict[str, str]]] = {}
        self.ticks: list[str] = []
        self._row: tuple[str, str] | None = None
        self._header_key: str | None = None
        self._text: list[str] = []
        self._cell: tuple[dict[str, str], str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "data-figure" in a:
            self.figures[a["data-figure"]] = a["data-value"]
        if "data-tick" in a:
            self.ticks.append(a["data-tick"])
        if "data-header" in a:
            self._header_key, self._text = a["data-header"], []
        if tag == "tr":
            keyed = [(k[5:], v) for k, v in a.items() if k.startswith("data-")]
            self._row = keyed[0] if keyed else None
        if tag == "td" and self._row and "data-col" in a:
            table, key = self._row
            cells = self.rows.setdefault(table, {}).setdefault(key, {})
            cells[a["data-col"]] = a.get("data-value", "")
            self._cell = None if "data-value" in a else (cells, a["data-col"])

    def handle_data(self, data: str) -> None:
        if self._header_key:
            self._text.append(data)
        if self._cell:                      # a text cell: its text is its value
            cells, column = self._cell
            cells[column] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        if tag == "dd" and self._header_key:
            self.header[self._header_key] = "".join(self._text)
            self._header_key = None


def read_figures(dom: str) -> Figures:
    parser = Figures()
    parser.feed(dom)
    return parser


def sql(warehouse: Path, query: str, params: list[Any] | None = None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def run(drop: Path, warehouse: Path) -> str:
    done = famlink("run", "--extracts", str(drop), "--warehouse", str(warehouse), "--plan",
                   "countywide", "--as-of", AS_OF, "--no-prefect")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def expected(warehouse: Path, run_id: int) -> dict[str, Any]:
    """The figures the page must show, by SQL on the published warehouse."""
    (claims,) = sql(warehouse, "SELECT count(*) FROM claims.ledger WHERE as_of = ? AND "
                               "status = 'claimed'", [AS_OF])[0]
    (new,) = sql(warehouse, "SELECT count(*) FROM claims.events WHERE event = 'claimed' AND "
                            "run_id = ?", [run_id])[0]
    (held,) = sql(warehouse, "SELECT count(*) FROM claims.assessments WHERE run_id = ? AND "
                             "decision = 'held_for_review'", [run_id])[0]
    loaded = dict(sql(warehouse, "SELECT extract, sum(rows_loaded) FROM meta.deliveries WHERE "
                                 "load_id = (SELECT max(load_id) FROM meta.loads) GROUP BY 1"))
    every = dict(sql(warehouse, "SELECT extract, sum(rows_loaded) FROM meta.deliveries "
                                "GROUP BY 1"))
    latest = dict(sql(warehouse, "SELECT extract, max(month) FROM meta.delivery_months WHERE "
                                 "status = 'delivered' GROUP BY 1"))
    (gaps,) = sql(warehouse, "SELECT count(*) FROM meta.delivery_months WHERE status IN "
                             "('missing', 'empty')")[0]
    return {"claims": claims, "new": new, "held": held, "loaded": loaded, "every": every,
            "latest": latest, "gaps": gaps}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run 1, its report kept aside with the warehouse's figures; a withdrawal; run 2."""
    root = tmp_path_factory.mktemp("run-report")
    drop, warehouse = root / "drop", root / "council" / "w.duckdb"
    for month in MONTHS:
        shutil.copytree(SAMPLE / month, drop / month)
    warehouse.parent.mkdir()
    first_output = run(drop, warehouse)
    report = warehouse.parent / "reports" / f"run_{AS_OF}.html"
    first = root / "first" / f"run_{AS_OF}.html"
    first.parent.mkdir()
    shutil.copyfile(report, first)
    first_expected = expected(warehouse, 1)
    assert first_expected["claims"] > 0, "the sample's first six months have claims"
    family = sql(warehouse, "SELECT min(family_id) FROM claims.current_claims")[0][0]
    done = famlink("withdraw", family, "--warehouse", str(warehouse), "--reason",
                   "audit: test withdrawal", "--by", "auditor")
    assert done.returncode == 0, done.stderr
    run(drop, warehouse)
    return {"root": root, "warehouse": warehouse, "first": first, "report": report,
            "first_expected": first_expected, "first_output": first_output,
            "second_expected": expected(warehouse, 2), "profile": root / "chromium"}


def test_the_run_says_where_its_report_is(built: dict[str, Any]) -> None:
    out = re.sub(r"\s+", "", built["first_output"])
    assert f"runreport:{built['report']}".replace(" ", "") in out
    assert built["report"].stat().st_mode & 0o077 == 0, "owner-only, like the warehouse"


def test_the_screenshot_shows_the_page_and_its_charts(built: dict[str, Any]) -> None:
    png = screenshot(built["first"], built["root"] / "first.png", built["profile"])
    pixels = decode_png(png)
    assert pixels.shape == (2000, WIDTH, 3)
    non_white = int((pixels != 255).any(axis=2).sum())
    assert non_white > 0.03 * WIDTH * 2000, f"nearly blank: {non_white} non-white pixels"

    def painted(colour: tuple[int, int, int]) -> int:
        return int((pixels == np.array(colour, dtype=np.uint8)).all(axis=2).sum())
    assert painted(BLUE) > 2000, "the match-probability histogram is drawn"
    assert painted(GREEN) > 500, "the links-per-source chart is drawn"


def test_the_figures_on_the_page_are_the_warehouses(built: dict[str, Any]) -> None:
    page = read_figures(dump_dom(built["first"], built["profile"]))
    want = built["first_expected"]
    assert page.header["plan"] == "countywide" and page.header["as-of"] == AS_OF
    assert page.header["run-id"] == "1"
    assert page.header["code-version"].startswith("famlink ")
    assert re.search(r"sha256 [0-9a-f]{12}", page.header["model-version"])
    assert int(page.figures["claims"]) == want["claims"]
    assert int(page.figures["claims-gbp"]) == want["claims"] * PAYMENT_GBP
    assert int(page.figures["new-claims"]) == want["new"] == want["claims"]
    assert int(page.figures["held-families"]) == want["held"]
    assert int(page.figures["held-gbp"]) == want["held"] * PAYMENT_GBP
    extracts = page.rows["extract"]
    assert {e: int(r["rows loaded"]) for e, r in extracts.items()} == want["loaded"]
    assert {e: int(r["rows loaded (all runs)"]) for e, r in extracts.items()} == want["every"]
    assert int(page.figures["rows-loaded"]) == sum(want["loaded"].values())
    assert {e: r["latest delivery"] for e, r in extracts.items()} == want["latest"]
    assert want["gaps"] == 0 and {r["data complete to"] for r in extracts.values()} == {AS_OF}
    assert {"0", "1", "10", "100"} <= set(page.ticks), "the histogram's y axis has a scale"


def test_what_changed_since_the_last_run(built: dict[str, Any]) -> None:
    dom = dump_dom(built["report"], built["profile"])
    page = read_figures(dom)
    want = built["second_expected"]
    assert page.header["run-id"] == "2"
    assert "Compared with run 1 (as-of 2023-06-30)" in dom
    changes = {k: int(v["count"]) for k, v in page.rows["change"].items()}
    assert changes["withdrawals since the previous run"] == 1
    assert changes["new claims"] == want["new"] == 0
    assert int(page.figures["claims"]) == want["claims"] == built["first_expected"]["claims"] - 1
    assert int(page.figures["claims-gbp"]) == want["claims"] * PAYMENT_GBP
    assert int(page.figures["rows-loaded"]) == 0 == sum(want["loaded"].values())


def test_the_pages_are_self_contained_name_nobody_and_fit_the_width(
        built: dict[str, Any]) -> None:
    linkage = built["warehouse"].parent / "reports" / f"linkage_{AS_OF}.html"
    members = sql(built["warehouse"], "SELECT DISTINCT last_name FROM staging.cohort_members "
                                      "WHERE length(last_name) >= 4")
    for report in (built["report"], linkage):
        text = report.read_text(encoding="utf-8")
        assert not re.search(r"<script|<link|<iframe|<img|@import|url\(|\b(src|href)=", text)
        dom = dump_dom(report, built["profile"])
        page = read_figures(dom)
        assert page.header["plan"] == "countywide" and page.header["run-id"] == "2"
        assert {"0", "1", "10", "100"} <= set(page.ticks)
        measured = re.search(r'data-scroll-width="(\d+)"', dom)
        assert measured and int(measured.group(1)) <= WIDTH, (report.name, measured)
    text = built["report"].read_text(encoding="utf-8")
    named = [n for (n,) in members if re.search(rf"\b{re.escape(n)}\b", text)]
    assert not named, f"the run report names cohort members: {len(named)} surnames found"


def test_data_is_complete_to_the_month_before_the_first_gap() -> None:
    from famlink.run_report import completeness

    months = [("2024-01", "delivered"), ("2024-02", "not_due"), ("2024-03", "missing"),
              ("2024-04", "delivered")]
    assert completeness(months, "2024-04") == ("2024-04", "2024-02-29", 1)
    assert completeness(months[:2], "2024-02") == ("2024-01", "2024-02-29", 0)
    assert completeness([("2024-01", "empty")], "2024-01") == ("none", "nothing complete", 1)
