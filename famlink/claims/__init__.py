"""Payment-by-results claims: what is due at a run, the ledger, the return, the audit pack.

Entry points used by the CLI and the monthly flow:

* ``record_due_claims(con, plan, as_of)``: inside the run, append the claims due.
* ``write_claims_csv(warehouse, as_of, out)``: ``famlink claims``.
* ``write_return(warehouse, as_of, out_dir)``: the council's CSV and XLSX return.
* ``withdraw_claim(warehouse, family_id, reason, by)``: audit found a claim invalid.
* ``famlink.claims.explain.explain_family``: ``famlink explain``.

The rules (eligibility, SSP, CE, which one when both are due) are in
``eligibility.py``; the ledger's guarantees (append-only, one claim per family
ever) in ``ledger.py``.
"""

from famlink.claims.ledger import (
    ClaimsSummary,
    WithdrawalError,
    record_due_claims,
    withdraw_claim,
)
from famlink.claims.returns import PAYMENT_GBP, write_claims_csv, write_return

__all__ = [
    "PAYMENT_GBP",
    "ClaimsSummary",
    "WithdrawalError",
    "record_due_claims",
    "withdraw_claim",
    "write_claims_csv",
    "write_return",
]
