"""Pathlink schemas: versioned encoding and linkage specs (JSON), their meta-schemas, and DDL.

Every schema file is reached through this module (``importlib.resources``, so it works from
an installed package as well as from the source tree):

* ``load_schema(kind, version)``: ``<kind>/v<version>.json`` (``encoding``, ``linkage``);
* ``load_meta_schema(kind)``: ``<kind>/spec.schema.json``, the JSON Schema every version of
  that kind validates against;
* ``ddl(name)``: ``<name>.sql`` (``state``, ``warehouse``, ``warehouse_facts``,
  ``warehouse_views``, ``warehouse_roi``).
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

DDL_NAMES = ("state", "warehouse", "warehouse_facts", "warehouse_views", "warehouse_roi")


def _file(*parts: str) -> Traversable:
    return files(__name__).joinpath(*parts)


def _kind(kind: str) -> str:
    if not kind.isidentifier():
        raise ValueError(f"bad schema kind {kind!r}")
    return kind


def load_schema(kind: str, version: int) -> dict[str, Any]:
    """Read ``schemas/<kind>/v<version>.json`` (e.g. ``load_schema("encoding", 1)``)."""
    text = _file(_kind(kind), f"v{int(version)}.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_meta_schema(kind: str) -> dict[str, Any]:
    """Read ``schemas/<kind>/spec.schema.json``, the JSON Schema of that kind's versions."""
    return json.loads(_file(_kind(kind), "spec.schema.json").read_text(encoding="utf-8"))


def ddl(name: str) -> str:
    """The SQL of ``schemas/<name>.sql`` (one of :data:`DDL_NAMES`)."""
    if name not in DDL_NAMES:
        raise ValueError(f"unknown DDL {name!r}; expected one of {', '.join(DDL_NAMES)}")
    return _file(f"{name}.sql").read_text(encoding="utf-8")
