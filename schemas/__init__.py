"""Pathlink schemas: versioned encoding / linkage specs (JSON) and warehouse DDL (SQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent


def load_schema(kind: str, version: int) -> dict[str, Any]:
    """Read ``schemas/<kind>/v<version>.json`` (e.g. ``load_schema("encoding", 1)``)."""
    if not kind.isidentifier():
        raise ValueError(f"bad schema kind {kind!r}")
    path = SCHEMA_DIR / kind / f"v{int(version)}.json"
    return json.loads(path.read_text(encoding="utf-8"))
