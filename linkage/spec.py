"""The linkage spec: what to block on, compare and decide, as frozen dataclasses.

A spec (``schemas/linkage/v<N>.json``) names encoded columns, comparison levels and
Fellegi-Sunter settings, and nothing about DuckDB, Prefect or files: the engine
(``linkage.engine``) and each stage read it. It is validated against the JSON Schema
``schemas/linkage/spec.schema.json`` before it is loaded. This module imports no other
``linkage`` module, so every stage can import it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import load_meta_schema, load_schema, validate_against_meta_schema

#: The spec version the pipeline links with (``schemas/linkage/v<N>.json``).
CURRENT_SPEC = 6
SPEC_VERSION = f"pathlink-linkage/{CURRENT_SPEC}"
#: JSON Schema of every spec version (data, beside the versions it validates).
LINK_SPEC_JSON_SCHEMA: dict[str, Any] = load_meta_schema("linkage")
#: The versions the meta-schema accepts (v1 for v1 encodings; v2 and v3 reproduce earlier
#: figures).
SPEC_VERSIONS: tuple[str, ...] = tuple(LINK_SPEC_JSON_SCHEMA["properties"]["version"]["enum"])
if SPEC_VERSION not in SPEC_VERSIONS:  # pragma: no cover - a bad edit of the meta-schema
    raise RuntimeError(f"{SPEC_VERSION} is not an accepted version in spec.schema.json")


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
    #: ``(blocking rule name, excluded comparisons)``: rules whose pairs train m, as Splink's
    #: ``estimate_parameters_using_expectation_maximisation(blocking_rule)``. A rule is one of
    #: the spec's blocking rules (its candidate pairs train m) or a ``token:<column>`` rule the
    #: spec does not block on: its own pairs then train m (at most ``training_max_pairs`` of
    #: them, a seeded random sample) without becoming candidates, as Splink trains on rules
    #: it does not predict with.
    training_rules: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: ``token:<column>`` rules the spec does not block on whose pairs join the population the
    #: model is fitted on without training m (as the rules a spec stopped blocking on did)
    fit_rules: tuple[str, ...] = ()
    #: At most this many pairs of the training and fit rules that do not block are compared (a
    #: seeded sample of their union, weighted up in the fit)
    training_max_pairs: int = 2_000_000

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
        object.__setattr__(self, "fit_rules", tuple(self.fit_rules))


@dataclass(frozen=True)
class ClusteringSpec:
    """Anti-chaining guard settings (see ``linkage.cluster``)."""

    ssn_token_column: str | None
    birth_year_column: str | None
    max_birth_year_gap: int
    direct_pair_guards: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "direct_pair_guards", tuple(self.direct_pair_guards))


def _checked_training(fs: FellegiSunterSpec, blocking: BlockingSpec) -> FellegiSunterSpec:
    """``fs``, once each training rule names a rule ``linkage.block.rule_positions`` can make
    (the JSON Schema already holds ``fit_rules`` to ``token:`` rules)."""
    named = ({f"exact:{r.name}" for r in blocking.exact} | {f"lsh:{r.name}" for r in blocking.lsh})
    for rule, _ in fs.training_rules:
        if not (rule.startswith("token:") or rule in named):
            raise ValueError(f"training rule {rule!r} is neither a token column nor a blocking "
                             "rule of the spec")
    return fs


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
        validate_against_meta_schema("linkage", data)
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
            fellegi_sunter=_checked_training(FellegiSunterSpec(**fs), blocking),
            clustering=ClusteringSpec(**cl),
            description=data.get("description", ""),
        )

    @classmethod
    def load(cls, source: int | str | Path = CURRENT_SPEC) -> LinkSpec:
        """Load by version number (``schemas/linkage/v<N>.json``) or from a path."""
        return load_link_spec(source)

    def replace(self, **changes: Any) -> LinkSpec:
        """A copy with top-level fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


def load_link_spec(source: int | str | Path = CURRENT_SPEC) -> LinkSpec:
    """Load a linkage spec by version number (``schemas/linkage/v<N>.json``) or path."""
    if isinstance(source, int):
        return LinkSpec.from_dict(load_schema("linkage", source))
    return LinkSpec.from_dict(json.loads(Path(source).read_text(encoding="utf-8")))


__all__ = [
    "CURRENT_SPEC",
    "LINK_SPEC_JSON_SCHEMA",
    "SPEC_VERSION",
    "SPEC_VERSIONS",
    "BlockingSpec",
    "ClusteringSpec",
    "ComparisonSpec",
    "ExactKeySpec",
    "FellegiSunterSpec",
    "LinkSpec",
    "LshSpec",
    "load_link_spec",
]
