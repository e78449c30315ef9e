"""The linkage spec and ``link_records``: block -> compare -> classify -> cluster.

The spec (``schemas/linkage/v4.json``, version ``pathlink-linkage/4``, for
``pathlink-encoding/2`` columns; v2 and v3 are kept to reproduce earlier figures, v1 for v1
encodings)
is engine-neutral: it names encoded columns, comparison levels and Fellegi-Sunter settings,
nothing about DuckDB, Prefect or files. It is validated with the JSON Schema below and loaded
into frozen dataclasses.
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

#: The spec version the pipeline links with (``schemas/linkage/v<N>.json``).
CURRENT_SPEC = 5
SPEC_VERSION = f"pathlink-linkage/{CURRENT_SPEC}"
SPEC_VERSIONS = tuple(f"pathlink-linkage/{n}" for n in range(1, CURRENT_SPEC + 1))
_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "linkage"

LINK_SPEC_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "link_type", "blocking", "comparisons", "fellegi_sunter",
                 "clustering"],
    "additionalProperties": False,
    "properties": {
        "version": {"enum": list(SPEC_VERSIONS)},
        "description": {"type": "string"},
        "link_type": {"enum": ["link_and_dedupe", "link_only", "dedupe_only"]},
        "blocking": {
            "type": "object",
            "required": ["token_columns", "lsh", "max_block_size"],
            "additionalProperties": False,
            "properties": {
                "token_columns": {"type": "array", "items": {"type": "string",
                                                             "pattern": "^(tok|ts)_"}},
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
                    "kind": {"enum": ["dice", "exact", "year_diff", "exact_levels",
                                      "token_set"]},
                    "null_below": {"type": "boolean"},
                    "m_prior": {"type": "array",
                                "items": {"type": "number", "exclusiveMinimum": 0}},
                    "prior_strength": {"type": "number", "minimum": 0},
                    "weaker_columns": {"type": "array", "items": {"type": "string"},
                                       "minItems": 1},
                    "column": {"type": "string"},
                    "thresholds": {"type": "array", "items": {"type": "number"}},
                    "salt_column": {"type": "string"},
                    "only_if_differs": {"oneOf": [
                        {"type": "string"},
                        {"type": "array", "minItems": 1, "items": {"type": "string"}}]},
                    "frequency_adjusted": {"type": "boolean"},
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
                "m_prior_strength": {"type": "number", "minimum": 0},
                "training_rules": {
                    "type": "array",
                    "items": {"type": "object", "required": ["rule", "excludes"],
                              "additionalProperties": False,
                              "properties": {"rule": {"type": "string"},
                                             "excludes": {"type": "array",
                                                          "items": {"type": "string"}}}},
                },
                "match_weight_threshold": {"type": "number"},
                "possible_weight_threshold": {"type": "number"},
                "overwhelming_weight": {"type": "number"},
                "weight_caps": {
                    "type": "array",
                    "items": {"type": "object", "required": ["comparisons", "max_weight"],
                              "additionalProperties": False,
                              "properties": {"comparisons": {"type": "array", "minItems": 1,
                                                             "items": {"type": "string"}},
                                             "max_weight": {"type": "number"},
                                             "description": {"type": "string"}}},
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
    missing counts as the same, empty, salt). ``only_if_differs`` is the converse, for the
    exact fallback of a salted filter: gamma is -1 unless the two records hold *different*
    values of that column (a token of the name pair then speaks only where the dob-salted
    name filters cannot, so the same evidence is not counted twice). ``m_probabilities``
    (one per level, gamma 0 first) fixes m for this comparison instead of estimating it by EM.
    ``frequency_adjusted`` (``exact`` and ``exact_levels`` only) lowers the weight of an
    agreement on a value that other persons hold too (``linkage.frequency``).
    """

    name: str
    kind: str
    column: str
    thresholds: tuple[float, ...] = ()
    m_probabilities: tuple[float, ...] | None = None
    description: str = ""
    salt_column: str | None = None
    only_if_differs: str | tuple[str, ...] | None = None
    weaker_columns: tuple[str, ...] = ()
    frequency_adjusted: bool = False
    null_below: bool = False
    m_prior: tuple[float, ...] | None = None
    prior_strength: float | None = None

    @property
    def levels(self) -> int:
        """Number of non-null gamma levels."""
        if self.kind == "exact_levels":
            return len(self.weaker_columns) + 2
        return 2 if self.kind in ("exact", "token_set") else len(self.thresholds) + 1

    @property
    def gamma_column(self) -> str:
        return f"gamma_{self.name}"

    @property
    def differs_columns(self) -> tuple[str, ...]:
        """The columns whose values must all differ for this comparison to speak."""
        if not self.only_if_differs:
            return ()
        if isinstance(self.only_if_differs, str):
            return (self.only_if_differs,)
        return tuple(self.only_if_differs)


@dataclass(frozen=True)
class WeightCap:
    """At most ``max_weight`` bits from ``comparisons`` together (correlated evidence: e.g. a
    name and an address that a whole household shares)."""

    comparisons: tuple[str, ...]
    max_weight: float
    description: str = ""


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
    weight_caps: tuple[WeightCap, ...] = ()
    m_prior_strength: float = 0.0
    training_rules: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        caps = tuple(c if isinstance(c, WeightCap) else
                     WeightCap(comparisons=tuple(c["comparisons"]),
                               max_weight=float(c["max_weight"]),
                               description=c.get("description", ""))
                     if isinstance(c, dict) else WeightCap(tuple(c[0]), float(c[1]))
                     for c in self.weight_caps)
        object.__setattr__(self, "weight_caps", caps)
        rules = tuple((r["rule"], tuple(r["excludes"])) if isinstance(r, dict)
                      else (r[0], tuple(r[1])) for r in self.training_rules)
        object.__setattr__(self, "training_rules", rules)



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
                only_if_differs=(tuple(c["only_if_differs"])
                                 if isinstance(c.get("only_if_differs"), list)
                                 else c.get("only_if_differs")),
                weaker_columns=tuple(c.get("weaker_columns", ())),
                frequency_adjusted=bool(c.get("frequency_adjusted", False)),
                null_below=bool(c.get("null_below", False)),
                m_prior=tuple(c["m_prior"]) if "m_prior" in c else None,
                prior_strength=c.get("prior_strength"),
            )
            if comp.kind == "dice" and list(comp.thresholds) != sorted(comp.thresholds,
                                                                        reverse=True):
                raise ValueError(f"{comp.name}: dice thresholds must be descending")
            if comp.kind == "year_diff" and list(comp.thresholds) != sorted(comp.thresholds):
                raise ValueError(f"{comp.name}: year_diff thresholds must be ascending")
            if (comp.kind == "exact_levels") != bool(comp.weaker_columns):
                raise ValueError(f"{comp.name}: weaker_columns go with kind exact_levels")
            if comp.null_below and comp.kind != "dice":
                raise ValueError(f"{comp.name}: null_below goes with kind dice")
            if comp.kind not in ("exact", "exact_levels", "token_set") and not comp.thresholds:
                raise ValueError(f"{comp.name}: {comp.kind} needs thresholds")
            if comp.frequency_adjusted and comp.kind not in ("exact", "exact_levels"):
                raise ValueError(f"{comp.name}: frequency_adjusted needs kind exact or "
                                 "exact_levels")
            if comp.m_prior is not None and len(comp.m_prior) != comp.levels:
                raise ValueError(f"{comp.name}: m_prior needs {comp.levels} values")
            if comp.m_probabilities is not None and len(comp.m_probabilities) != comp.levels:
                raise ValueError(f"{comp.name}: m_probabilities needs {comp.levels} values")
            comparisons.append(comp)
        if len({c.name for c in comparisons}) != len(comparisons):
            raise ValueError("comparison names must be unique")
        names = {c.name for c in comparisons}
        fs = data["fellegi_sunter"]
        seen: set[str] = set()
        for cap in fs.get("weight_caps", ()):
            unknown = set(cap["comparisons"]) - names
            if unknown:
                raise ValueError(f"weight cap names unknown comparisons: {sorted(unknown)}")
            if seen & set(cap["comparisons"]):
                raise ValueError("a comparison may be in one weight cap only")
            seen |= set(cap["comparisons"])
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
    def load(cls, source: int | str | Path = CURRENT_SPEC) -> LinkSpec:
        """Load by version number (``schemas/linkage/v<N>.json``) or from a path."""
        return load_link_spec(source)

    def replace(self, **changes: Any) -> LinkSpec:
        """A copy with top-level fields replaced (``dataclasses.replace``)."""
        import dataclasses

        return dataclasses.replace(self, **changes)


def load_link_spec(source: int | str | Path = CURRENT_SPEC) -> LinkSpec:
    """Load a linkage spec by version number (``schemas/linkage/v<N>.json``) or path."""
    path = _SCHEMA_DIR / f"v{source}.json" if isinstance(source, int) else Path(source)
    return LinkSpec.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass
class LinkResult:
    """Output of :func:`link_records`.

    Attributes:
        pairs: One row per candidate pair (``keep_pairs="all"``) or per pair at or above the
            possible-match weight (``keep_pairs="scored"``): ``record_key_l``,
            ``record_key_r``, ``gamma_*``, ``match_weight``, ``match_probability``,
            ``match_class``, ``frequency_adjustment`` (log2 bits already in the weight; 0
            unless the spec has ``frequency_adjusted`` comparisons).
        clusters: ``record_key``, ``cluster_id``, ``cluster_reason`` for every record.
        stats: Counts and timings (no record values).
        model: The fitted :class:`linkage.classify.FellegiSunter`.
        candidates: Every candidate pair as row positions of the encoded frame
            (``block.CandidatePositions``, for pairs completeness without a frame of all
            pairs).
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    candidates: Any = None


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


#: Candidate pairs compared per batch: bounds the int8 gamma matrix and the kernels' scratch.
COMPARE_BATCH = 2_000_000


def _rescore(scored: pd.DataFrame, adjustment: np.ndarray, spec: LinkSpec) -> pd.DataFrame:
    """``scored`` with ``adjustment`` added to each pair's weight, re-classified."""
    from linkage import classify

    weight = scored["match_weight"].to_numpy() + adjustment
    return scored.assign(
        match_weight=weight, match_probability=1.0 / (1.0 + np.exp2(-weight)),
        match_class=classify.match_classes(weight, spec.fellegi_sunter),
        frequency_adjustment=scored["frequency_adjustment"].to_numpy() + adjustment)


def _frequency_pass(scored: pd.DataFrame, left: np.ndarray, right: np.ndarray,
                    encoded: pd.DataFrame, spec: LinkSpec, model: Any,
                    keep_pairs: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The scored pairs with ``linkage.frequency`` adjustments applied, and their counts.

    Persons per token value come from a first clustering of the pairs "scored" keeps (so that
    both ``keep_pairs`` modes agree) on their weights without the adjusted comparisons.
    ``left`` and ``right`` are the row positions of ``scored``'s pairs.
    """
    from linkage import classify, cluster, frequency

    adjusted = [c for c in spec.comparisons if c.frequency_adjusted]
    first_pairs = scored[scored["match_class"] != "non_match"]
    without = first_pairs[model.features].copy()
    without[[c.gamma_column for c in adjusted if c.gamma_column in without]] = -1
    weight = model.match_weight(without)
    first = cluster.cluster_records(
        encoded["record_key"],
        first_pairs.assign(match_weight=weight,
                           match_class=classify.match_classes(weight, spec.fellegi_sunter)),
        encoded, spec)
    adjustment = frequency.frequency_adjustments(
        encoded, first["cluster_id"].to_numpy(), left, right, scored, model.u_, adjusted)
    stats = {"frequency_adjusted_pairs": int((adjustment < 0).sum()),
             "frequency_demoted_matches": 0}
    if not stats["frequency_adjusted_pairs"]:
        return scored, stats
    was_match = (scored["match_class"] == "match").to_numpy()
    scored = _rescore(scored, adjustment, spec)
    stats["frequency_demoted_matches"] = int(
        (was_match & (scored["match_class"] != "match").to_numpy()).sum())
    if keep_pairs == "scored":
        scored = scored[scored["match_class"] != "non_match"].reset_index(drop=True)
    return scored, stats


def link_records(encoded: pd.DataFrame, spec: LinkSpec, *, keep_pairs: str = "all",
                 batch_size: int = COMPARE_BATCH) -> LinkResult:
    """Run blocking, comparison, Fellegi-Sunter scoring and clustering.

    Candidate pairs are held as row positions; they are compared in batches, and each pair
    keeps only its gamma pattern code (one integer), so memory per candidate pair stays at a
    few bytes. EM runs once per distinct gamma vector, and so does scoring. A spec with
    ``frequency_adjusted`` comparisons adds a second pass over the scored pairs
    (``linkage.frequency``): persons per token value are counted in a clustering without that
    evidence, agreements on values other persons hold lose weight, and the pairs are
    re-classified before the final clustering.

    Args:
        encoded: Encoded records with ``record_key`` (unique), ``partner_id``, ``tok_*``,
            ``bf_*`` and optionally ``birth_year``, ``sex``.
        spec: The linkage spec.
        keep_pairs: ``"all"`` returns every candidate pair in ``pairs``; ``"scored"`` only
            those at or above ``possible_weight_threshold`` (the matches and the
            clerical-review list), which is what clustering and review need at scale.
        batch_size: Candidate pairs compared per batch.

    Returns:
        A :class:`LinkResult`.
    """
    from linkage import block, classify, cluster, compare

    if keep_pairs not in ("all", "scored"):
        raise ValueError("keep_pairs must be 'all' or 'scored'")
    spec, notes = usable_spec(encoded, spec)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    training_rules = spec.fellegi_sunter.training_rules
    candidates = block.candidate_positions(encoded, spec, [r for r, _ in training_rules])
    block_stats = candidates.stats
    timings["block_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = classify.FellegiSunter(spec)
    columns = compare.ComparisonColumns.build(encoded, spec)
    n_pairs = len(candidates)
    pattern = np.empty(n_pairs, dtype=model.pattern_dtype())
    for lo in range(0, n_pairs, batch_size):
        hi = min(lo + batch_size, n_pairs)
        gamma = columns.gamma_matrix(candidates.left[lo:hi], candidates.right[lo:hi])
        pattern[lo:hi] = model.pattern_codes(gamma)
    rng = np.random.default_rng(spec.fellegi_sunter.u_seed)
    rand_left, rand_right = compare.random_pairs(encoded, spec, spec.fellegi_sunter.u_sample_size,
                                                 rng)
    random_features = columns.compare(rand_left, rand_right)
    # only a workspace too small for EM needs the ungated chance agreement (classify)
    random_ungated = (columns.compare(rand_left, rand_right, gated=False)
                      if n_pairs < classify.MIN_EM_PAIRS else None)
    timings["compare_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    codes, counts = np.unique(pattern, return_counts=True)
    patterns = model.decode_patterns(codes)
    # per pair: its pattern's row (pairs are scored by pattern, never one by one)
    which = np.empty(n_pairs, dtype=np.int32 if len(codes) < 2 ** 31 else np.int64)
    for lo in range(0, n_pairs, batch_size):
        hi = min(lo + batch_size, n_pairs)
        which[lo:hi] = np.searchsorted(codes, pattern[lo:hi])
    del pattern
    training = tuple(
        (rule, np.bincount(which[candidates.rule_pairs[rule]], minlength=len(codes)),
         tuple(f"gamma_{name}" for name in excludes))
        for rule, excludes in training_rules if rule in candidates.rule_pairs)
    model.fit_patterns(patterns, counts, random_features=random_features,
                       comparable_pairs=comparable_pairs(encoded, spec),
                       random_ungated=random_ungated, training=training)
    pattern_scores = model.predict(pd.DataFrame(patterns, columns=model.features))
    pair_class = pattern_scores["match_class"].cat.codes.to_numpy()[which]
    kept = (np.arange(n_pairs) if keep_pairs == "all"
            else np.flatnonzero(pair_class < classify.MATCH_CLASSES.index("non_match")))
    del pair_class
    record_keys = encoded["record_key"].astype(str).to_numpy(dtype=object)
    rows = which[kept]
    scored_left = candidates.left[kept]
    scored_right = candidates.right[kept]
    scored = pd.concat(
        [pd.DataFrame({"record_key_l": record_keys[scored_left],
                       "record_key_r": record_keys[scored_right]}),
         pd.DataFrame(patterns[rows], columns=model.features),
         pattern_scores.iloc[rows].reset_index(drop=True)], axis=1)
    scored["frequency_adjustment"] = 0.0
    del which, rows, kept
    timings["classify_s"] = time.perf_counter() - t0

    frequency_stats = {"frequency_adjusted_pairs": 0, "frequency_demoted_matches": 0}
    if any(c.frequency_adjusted for c in spec.comparisons) and len(scored):
        t0 = time.perf_counter()
        scored, frequency_stats = _frequency_pass(scored, scored_left, scored_right, encoded,
                                                  spec, model, keep_pairs)
        timings["frequency_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    clusters = cluster.cluster_records(encoded["record_key"], scored, encoded, spec)
    timings["cluster_s"] = time.perf_counter() - t0
    del scored_left, scored_right
    final_class = scored["match_class"].to_numpy()

    stats: dict[str, Any] = {
        "records": len(encoded),
        "candidate_pairs": block_stats.pair_count,
        "pairs_by_rule": dict(block_stats.pairs_by_rule),
        "skipped_blocks": dict(block_stats.skipped_blocks),
        "skipped_block_records": dict(block_stats.skipped_block_records),
        "match_pairs": int((final_class == "match").sum()),
        "possible_pairs": int((final_class == "possible").sum()),
        **frequency_stats,
        "gamma_patterns": len(codes),
        "clusters": int(clusters["cluster_id"].nunique()),
        "split_clusters": int(clusters["cluster_reason"].str.startswith("split:").sum()),
        "candidate_match_share": float(model.lambda_),
        "match_prior": float(model.prior_),
        "em_iterations": int(model.n_iter_),
        "fit": model.fit_report_,
        "notes": notes,
        **timings,
    }
    return LinkResult(pairs=scored, clusters=clusters, stats=stats, model=model,
                      candidates=candidates)
