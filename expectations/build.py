"""Write the committed suites: ``python -m expectations.build``.

Suites are generated, never hand-edited, so regenerating after a contract
change is the only way to change them; keys are sorted and indented so a
contract change shows up as a readable diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from expectations.suites import build_suite
from famlink.contract import load_contract

SUITE_DIR = Path(__file__).resolve().parent


def suite_path(extract_name: str) -> Path:
    """Where the committed suite of one extract lives."""
    return SUITE_DIR / f"{extract_name}.json"


def render(suite: dict[str, Any]) -> str:
    """Stable JSON text of a suite (the committed form)."""
    return json.dumps(suite, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_all() -> dict[str, str]:
    """Fresh suite text per extract name, straight from the contract."""
    contract = load_contract()
    return {spec.name: render(build_suite(spec)) for spec in contract.files.values()}


def main() -> None:
    """Regenerate every committed suite from the contract."""
    for name, text in build_all().items():
        path = suite_path(name)
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.name}")
        else:
            print(f"unchanged {path.name}")


if __name__ == "__main__":
    main()
