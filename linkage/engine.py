"""The linkage spec and ``link_records``: block -> compare -> classify -> cluster.

The spec (``schemas/linkage/v1.json``, version ``pathlink-linkage/1``) is engine-neutral: it
names encoded columns, comparison levels and Fellegi-Sunter settings, nothing about DuckDB,
Prefect or files. It is validated with the JSON Schema below and loaded into frozen
dataclasses.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd

SPEC_VERSION = "pathlink-linkage/1"
_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "linkage"

LINK_SPEC_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "link_type", "blocking", "comparisons", "fellegi_sunter",
                 "clustering"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": SPEC_VERSION},
        "description": {"type": "string"},
        "link_type": {"enum": ["link_and_dedupe", "link_only", "dedupe_only"]},
        "blocking": {
            "type": "object",
            "required": ["token_columns", "lsh", "max_block_size"],
            "additionalProperties": False,
            "properties": {
                "token_columns": {"type": "array", "items": {"type": "string",
                                                             "pattern": "^tok_"}},
                "max_block_size": {"type": "integer", "minimum": 2},
                "exact": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "columns"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "columns": {"type": "array", "minItems": 1, "uniqueItems": True,
                                        "items": {"type": "string"}},
                        },
                    },
                },
                "lsh": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "columns", "bands", "bits_per_band", "seed"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "columns": {"type": "array", "minItems": 1,
                                        "items": {"type": "string", "pattern": "^bf_"}},
                            "bands": {"type": "integer", "minimum": 1},
                            "bits_per_band": {"type": "integer", "minimum": 1, "maximum": 64},
                            "seed": {"type": "integer", "minimum": 0},
                            "key_columns": {"type": "array", "uniqueItems": True,
                                            "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
        "comparisons": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "kind", "column"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "description": {"type": "string"},
                    "kind": {"enum": ["dice", "exact", "year_diff"]},
                    "column": {"type": "string"},
                    "thresholds": {"type": "array", "items": {"type": "number"}},
                    "salt_column": {"type": "string"},
                    "m_probabilities": {"type": "array",
                                        "items": {"type": "number", "exclusiveMinimum": 0,
                                                  "exclusiveMaximum": 1}},
                },
            },
        },
        "fellegi_sunter": {
            "type": "object",
            "required": ["u_sample_size", "u_seed", "em_max_iterations", "em_tolerance",
                         "initial_match_prior", "match_weight_threshold",
                         "possible_weight_threshold", "overwhelming_weight"],
            "additionalProperties": False,
            "properties": {
                "u_sample_size": {"type": "integer", "minimum": 100},
                "u_seed": {"type": "integer", "minimum": 0},
                "em_max_iterations": {"type": "integer", "minimum": 1},
                "em_tolerance": {"type": "number", "exclusiveMinimum": 0},
                "initial_match_prior": {"type": "number", "exclusiveMinimum": 0,
                                        "exclusiveMaximum": 1},
                "fix_u": {"type": "boolean"},
                "match_weight_threshold": {"type": "number"},
                "possible_weight_threshold": {"type": "number"},
                "overwhelming_weight": {"type": "number"},
                "weight_caps": {
                    "type": "array",
                    "items": {"type": "object", "required": ["comparisons", "max_weight"],
                              "additionalProperties": False,
                              "properties": {"comparisons": {"type": "array", "minItems": 1,
                                                             "items": {"type": "string"}},
                                             "max_weight": {"type": "number"}}},
                },
            },
        },
        "clustering": {
            "type": "object",
            "required": ["ssn_token_column", "birth_year_column", "max_birth_year_gap"],
            "additionalProperties": False,
            "properties": {
                "ssn_token_column": {"type": ["string", "null"]},
                "birth_year_column": {"type": ["string", "null"]},
                "max_birth_year_gap": {"type": "integer", "minimum": 0},
                "direct_pair_guards": {"type": "array", "uniqueItems": True,
                                       "items": {"enum": ["ssn", "birth_year"]}},
            },
        },
    },
}


@dataclass(frozen=True)
class LshSpec:
    """One Hamming-LSH blocking rule over concatenated Bloom filters.

    ``key_columns`` (optional) are exact columns joined to every band key, so only records
    that also agree on them share a block (e.g. similar names within one birth year): this
    keeps a rule's pair count linear in the number of records when the filters alone cluster.
    """

    name: str
    columns: tuple[str, ...]
    bands: int
    bits_per_band: int
    seed: int
    key_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExactKeySpec:
    """One blocking rule on the joint equality of encoded columns (e.g. ``bf_dob`` bytes)."""

    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class BlockingSpec:
    """Blocking settings: token columns, exact-key rules, LSH rules and the block-size cap."""

    token_columns: tuple[str, ...]
    lsh: tuple[LshSpec, ...]
    max_block_size: int
    exact: tuple[ExactKeySpec, ...] = ()


@dataclass(frozen=True)
class ComparisonSpec:
    """One comparison, producing the feature ``gamma_<name>``.

    ``kind`` is ``dice`` (Bloom filters; gamma = number of ``thresholds`` met, thresholds
    descending), ``exact`` (tokens or plain values: 1 equal, 0 different) or ``year_diff``
    (integers: gamma = number of ``thresholds`` (max absolute differences, ascending) met).
    Missing on either side gives -1. ``salt_column`` names the column the filters were salted
    with (e.g. ``bf_dob``): gamma is -1 unless both records hold the same salt value (both
    missing counts as the same, empty, salt). ``m_probabilities`` (one per level, gamma 0
    first) fixes m for this comparison instead of estimating it by EM.
    """

    name: str
    kind: str
    column: str
    thresholds: tuple[float, ...] = ()
    m_probabilities: tuple[float, ...] | None = None
    description: str = ""
    salt_column: str | None = None

    @property
    def levels(self) -> int:
        """Number of non-null gamma levels."""
        return 2 if self.kind == "exact" else len(self.thresholds) + 1

    @property
    def gamma_column(self) -> str:
        return f"gamma_{self.name}"


@dataclass(frozen=True)
class FellegiSunterSpec:
    """Fellegi-Sunter estimation and decision settings (weights are log2 Bayes factors)."""

    u_sample_size: int
    u_seed: int
    em_max_iterations: int
    em_tolerance: float
    initial_match_prior: float
    match_weight_threshold: float
    possible_weight_threshold: float
    overwhelming_weight: float
    fix_u: bool = True
    weight_caps: tuple[tuple[tuple[str, ...], float], ...] = ()

    def __post_init__(self) -> None:
        caps = tuple((tuple(c["comparisons"]), float(c["max_weight"])) if isinstance(c, dict)
                     else (tuple(c[0]), float(c[1])) for c in self.weight_caps)
        object.__setattr__(self, "weight_caps", caps)


@dataclass(frozen=True)
class ClusteringSpec:
    """Anti-chaining guard settings (see ``linkage.cluster``)."""

    ssn_token_column: str | None
    birth_year_column: str | None
    max_birth_year_gap: int
    direct_pair_guards: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "direct_pair_guards", tuple(self.direct_pair_guards))


@dataclass(frozen=True)
class LinkSpec:
    """The whole linkage spec, loaded from ``schemas/linkage/v<N>.json``."""

    version: str
    link_type: str
    blocking: BlockingSpec
    comparisons: tuple[ComparisonSpec, ...]
    fellegi_sunter: FellegiSunterSpec
    clustering: ClusteringSpec
    description: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkSpec:
        """Validate ``data`` against the JSON Schema and build the spec."""
        jsonschema.validate(data, LINK_SPEC_JSON_SCHEMA)
        b = data["blocking"]
        blocking = BlockingSpec(
            token_columns=tuple(b["token_columns"]),
            lsh=tuple(LshSpec(name=r["name"], columns=tuple(r["columns"]), bands=r["bands"],
                              bits_per_band=r["bits_per_band"], seed=r["seed"],
                              key_columns=tuple(r.get("key_columns", ())))
                      for r in b["lsh"]),
            max_block_size=b["max_block_size"],
            exact=tuple(ExactKeySpec(name=r["name"], columns=tuple(r["columns"]))
                        for r in b.get("exact", ())),
        )
        comparisons = []
        for c in data["comparisons"]:
            comp = ComparisonSpec(
                name=c["name"], kind=c["kind"], column=c["column"],
                thresholds=tuple(c.get("thresholds", ())),
                m_probabilities=(tuple(c["m_probabilities"]) if "m_probabilities" in c
                                 else None),
                description=c.get("description", ""),
                salt_column=c.get("salt_column"),
            )
            if comp.kind == "dice" and list(comp.thresholds) != sorted(comp.thresholds,
                                                                        reverse=True):
                raise ValueError(f"{comp.name}: dice thresholds must be descending")
            if comp.kind == "year_diff" and list(comp.thresholds) != sorted(comp.thresholds):
                raise ValueError(f"{comp.name}: year_diff thresholds must be ascending")
            if comp.kind != "exact" and not comp.thresholds:
                raise ValueError(f"{comp.name}: {comp.kind} needs thresholds")
            if comp.m_probabilities is not None and len(comp.m_probabilities) != comp.levels:
                raise ValueError(f"{comp.name}: m_probabilities needs {comp.levels} values")
            comparisons.append(comp)
        if len({c.name for c in comparisons}) != len(comparisons):
            raise ValueError("comparison names must be unique")
        fs = data["fellegi_sunter"]
        if fs["possible_weight_threshold"] > fs["match_weight_threshold"]:
            raise ValueError("possible_weight_threshold must be <= match_weight_threshold")
        cl = data["clustering"]
        return cls(
            version=data["version"],
            link_type=data["link_type"],
            blocking=blocking,
            comparisons=tuple(comparisons),
            fellegi_sunter=FellegiSunterSpec(**fs),
            clustering=ClusteringSpec(**cl),
            description=data.get("description", ""),
        )

    @classmethod
    def load(cls, source: int | str | Path = 1) -> LinkSpec:
        """Load by version number (``schemas/linkage/v<N>.json``) or from a path."""
        return load_link_spec(source)

    def replace(self, **changes: Any) -> LinkSpec:
        """A copy with top-level fields replaced (``dataclasses.replace``)."""
        import dataclasses

        return dataclasses.replace(self, **changes)


def load_link_spec(source: int | str | Path = 1) -> LinkSpec:
    """Load a linkage spec by version number (``schemas/linkage/v<N>.json``) or path."""
    path = _SCHEMA_DIR / f"v{source}.json" if isinstance(source, int) else Path(source)
    return LinkSpec.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass
class LinkResult:
    """Output of :func:`link_records`.

    Attributes:
        pairs: One row per candidate pair: ``record_key_l``, ``record_key_r``, ``gamma_*``,
            ``match_weight``, ``match_probability``, ``match_class``.
        clusters: ``record_key``, ``cluster_id``, ``cluster_reason`` for every record.
        stats: Counts and timings (no record values).
        model: The fitted :class:`linkage.classify.FellegiSunter`.
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    model: Any = None


def comparable_pairs(encoded: pd.DataFrame, spec: LinkSpec) -> int:
    """Number of record pairs blocking chooses from, given ``spec.link_type``."""
    n = len(encoded)
    if spec.link_type == "link_and_dedupe" or "partner_id" not in encoded.columns:
        return n * (n - 1) // 2
    sizes = encoded["partner_id"].value_counts().to_numpy().astype(np.int64)
    within = int((sizes * (sizes - 1) // 2).sum())
    return n * (n - 1) // 2 - within if spec.link_type == "link_only" else within


def usable_spec(encoded: pd.DataFrame, spec: LinkSpec) -> tuple[LinkSpec, list[str]]:
    """The spec without comparisons whose column ``encoded`` lacks, and a note for each.

    Old encodings (made before a column such as ``bf_full_name`` existed) still link: the
    comparison is skipped rather than scored as always-missing.
    """
    kept = [c for c in spec.comparisons if c.column in encoded.columns]
    notes = [f"comparison {c.name!r} skipped: column {c.column!r} not in the encoded frame"
             for c in spec.comparisons if c.column not in encoded.columns]
    if not kept:
        raise ValueError("none of the spec's comparison columns is in the encoded frame")
    return (spec if not notes else spec.replace(comparisons=tuple(kept))), notes


def link_records(encoded: pd.DataFrame, spec: LinkSpec) -> LinkResult:
    """Run blocking, comparison, Fellegi-Sunter scoring and clustering.

    Args:
        encoded: Encoded records with ``record_key`` (unique), ``partner_id``, ``tok_*``,
            ``bf_*`` and optionally ``birth_year``, ``sex``.
        spec: The linkage spec.

    Returns:
        A :class:`LinkResult`.
    """
    from linkage import block, classify, cluster, compare

    spec, notes = usable_spec(encoded, spec)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    pairs, block_stats = block.candidate_pairs_with_stats(encoded, spec)
    timings["block_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    columns = compare.ComparisonColumns.build(encoded, spec)
    left, right = block.pair_positions(pairs, encoded)
    features = columns.compare(left, right)
    rng = np.random.default_rng(spec.fellegi_sunter.u_seed)
    rand_left, rand_right = compare.random_pairs(encoded, spec, spec.fellegi_sunter.u_sample_size,
                                                 rng)
    random_features = columns.compare(rand_left, rand_right)
    timings["compare_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = classify.FellegiSunter(spec).fit(features, random_features=random_features,
                                             comparable_pairs=comparable_pairs(encoded, spec))
    scores = model.predict(features)
    timings["classify_s"] = time.perf_counter() - t0

    scored = pd.concat(
        [pd.DataFrame({"record_key_l": pairs.get_level_values(0),
                       "record_key_r": pairs.get_level_values(1)}),
         features.reset_index(drop=True), scores.reset_index(drop=True)], axis=1)

    t0 = time.perf_counter()
    clusters = cluster.cluster_records(encoded["record_key"], scored, encoded, spec)
    timings["cluster_s"] = time.perf_counter() - t0

    counts = scored["match_class"].value_counts()
    stats: dict[str, Any] = {
        "records": len(encoded),
        "candidate_pairs": block_stats.pair_count,
        "pairs_by_rule": dict(block_stats.pairs_by_rule),
        "skipped_blocks": dict(block_stats.skipped_blocks),
        "skipped_block_records": dict(block_stats.skipped_block_records),
        "match_pairs": int(counts.get("match", 0)),
        "possible_pairs": int(counts.get("possible", 0)),
        "clusters": int(clusters["cluster_id"].nunique()),
        "split_clusters": int(clusters["cluster_reason"].str.startswith("split:").sum()),
        "candidate_match_share": float(model.lambda_),
        "match_prior": float(model.prior_),
        "em_iterations": int(model.n_iter_),
        "notes": notes,
        **timings,
    }
    return LinkResult(pairs=scored, clusters=clusters, stats=stats, model=model)
