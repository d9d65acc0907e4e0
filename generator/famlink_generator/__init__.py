"""Synthetic county generator: partner extracts to the input contract, with ground truth.

A package of its own beside famlink (generator/ in the repository): the tests,
the benchmarks, ``famlink generate`` and ``make demo`` use it; the pipeline never
imports it (tests/test_generate_boundary.py). It reads famlink's copy of the
extract contract (writer.contract_dir) and writes to it.

    from famlink_generator import GeneratorConfig, generate_county
    summary = generate_county(GeneratorConfig(out_dir=Path("drop"), plan="countywide"))

Modules: people (residents, households, addresses, identifiers), cohort (families
and problems), trajectories (planted outcome data per problem kind), corruption
(how sources mis-record identities), sources (per-extract writers), writer (CSV,
BOM/CRLF variants, planted faults), truth (ground truth formats), conventions
(recording conventions the contract leaves open, drawn per county under
``conventions="varied"``: a rendering layer the truth does not depend on).
"""

from .config import GenerateSummary, GeneratorConfig
from .county import generate_county

__all__ = ["GenerateSummary", "GeneratorConfig", "generate_county"]
