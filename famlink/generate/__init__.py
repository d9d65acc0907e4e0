"""Synthetic county generator: partner extracts to the input contract, with ground truth.

    from famlink.generate import GeneratorConfig, generate_county
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
