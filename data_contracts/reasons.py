"""The one vocabulary of reason codes (`reasons.yaml`): what each means and how to fix it.

`pathlink check`, `status`, `feedback`, the ledger and docs/contracts.md use these codes and
nothing else; `fix(code)` is the plain-language instruction for a partner. No text here ever
quotes a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

REASONS_PATH = Path(__file__).resolve().parent / "reasons.yaml"
SCOPES = frozenset({"row", "column", "file"})


@dataclass(frozen=True)
class Reason:
    """One reason code: where it applies, what it means, what the partner should do."""

    code: str
    scope: str
    meaning: str
    fix: str
    fix_by_field: dict[str, str] = field(default_factory=dict)


@cache
def reasons() -> dict[str, Reason]:
    """Every reason code, in the file's order."""
    with REASONS_PATH.open(encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    out: dict[str, Reason] = {}
    for code, spec in doc.items():
        if spec.get("scope") not in SCOPES or not spec.get("meaning") or not spec.get("fix"):
            raise ValueError(f"reasons.yaml: {code} needs scope (row|column|file), meaning, fix")
        out[code] = Reason(code, spec["scope"], str(spec["meaning"]), str(spec["fix"]),
                           {str(k): str(v) for k, v in (spec.get("fix_by_field") or {}).items()})
    return out


def reason(code: str) -> Reason | None:
    """The reason for `code`, or None for a code outside the vocabulary."""
    return reasons().get(code)


def fix(code: str, field: str | None = None) -> str:
    """The plain-language fix for `code` (for `field` where it has its own), '' for a code
    outside the vocabulary."""
    found = reasons().get(code)
    if found is None:
        return ""
    return found.fix_by_field.get(field or "", found.fix)
