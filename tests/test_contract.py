"""The shipped contract is the shared one, and identifier rules agree in Python and SQL."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest

from famlink.contract import PLANS, load_contract, load_indicators
from matchers.identifiers import (
    install_identifier_macros,
    nhs_check_digit,
    normalise_nhs_number,
    normalise_ni_number,
    normalise_upn,
    normalise_uprn,
    upn_check_letter,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "contracts"
SHIPPED = Path(__file__).resolve().parents[1] / "famlink" / "contract"


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared contracts folder not beside the repo")
@pytest.mark.parametrize("name", ["extracts.yaml", "indicators.yaml"])
def test_shipped_contract_is_the_shared_contract(name: str) -> None:
    assert (SHIPPED / name).read_bytes() == (SHARED / name).read_bytes()


def test_contract_models() -> None:
    contract = load_contract()
    assert len(contract.files) == 14
    assert contract.extract("yot_offences").delivery == "delta"
    assert contract.extract("dwp_benefits").columns["dob"].format == "%Y%m%d"
    indicators = load_indicators()
    assert set(indicators) == set(PLANS)
    assert indicators["thurrock"]["1F"].startswith("nominated by professionals")
    assert len(indicators["thurrock"]) == 36


def _random_values(rng: random.Random) -> list[str]:
    values = []
    for _ in range(300):
        digits = "".join(rng.choice("0123456789") for _ in range(12))
        values.append(upn_check_letter(digits) + digits)
        values.append(rng.choice("ABCDEFGHJKLMNPQRTUVWXYZ") + digits)
        nine = "".join(rng.choice("0123456789") for _ in range(9))
        check = nhs_check_digit(nine)
        values.append(nine + str(check if check is not None else 0))
        values.append(nine[:3] + " " + nine[3:6] + " " + nine[6:] + str(rng.randint(0, 9)))
        letters = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(2))
        values.append(letters + "".join(rng.choice("0123456789") for _ in range(6))
                      + rng.choice("ABCDE"))
    return values + ["", " ", "0000000000", "QQ 12 34 56 C", "ab123456c", "T12345678901A"]


def test_python_and_sql_identifier_rules_agree() -> None:
    con = duckdb.connect()
    install_identifier_macros(con)
    values = _random_values(random.Random(7))
    for python_rule, macro in ((normalise_upn, "fl_upn"), (normalise_nhs_number, "fl_nhs"),
                               (normalise_ni_number, "fl_ni"), (normalise_uprn, "fl_uprn")):
        sql = con.execute(f"SELECT v, {macro}(v) FROM unnest(?) AS t(v)", [values]).fetchall()
        assert [python_rule(v) for v, _ in sql] == [s for _, s in sql], macro


def test_identifier_examples() -> None:
    assert normalise_nhs_number("943 476 5919") == "9434765919"
    assert normalise_nhs_number("9434765918") is None
    assert normalise_ni_number("ab 12 34 56 c") == "AB123456C"
    for never_issued in ("QQ123456C", "BG123456A", "AO123456A", "DA123456A", "AB123456E"):
        assert normalise_ni_number(never_issued) is None
    assert normalise_upn("A123456789012") == "A123456789012"
    assert normalise_upn("B123456789012") is None
    assert normalise_uprn("000100023336956") is None and normalise_uprn("0100023336956") is None
    assert normalise_uprn("100023336956") == "100023336956"
