"""Frequency adjustment of exact token agreement, with frequencies counted in persons.

A Fellegi-Sunter ``u`` is one number per comparison level: the chance that two unrelated
records agree there, averaged over every value. Two records sharing a rare full name are
stronger evidence than two sharing a common one, so linkers adjust the weight of an exact
agreement by the frequency of the agreeing value (Splink's term-frequency adjustments; Winkler's
frequency-based matching). Here the values are tokens (HMACs); only their equality is used, and
the counts live in memory for one run.

Three choices differ from a plain term frequency:

* **Persons, not records.** A participant served by three partners has three records with one
  name token; counted in records, every multi-program participant's name would look common.
  The count is the number of clusters holding the value, in a first clustering pass.
* **That pass leaves out the adjusted evidence.** It clusters on each pair's weight without the
  adjusted comparisons (their gamma taken as missing). Clustered on the full weights, namesakes
  whom the shared name alone links would be one cluster, their name would look held by one
  person, and nothing would be adjusted.
* **The pair's own records do not count against it.** For a pair ``(l, r)``,
  ``others`` is the number of first-pass clusters holding the value besides those of ``l`` and
  ``r`` (a person whose dob typo kept their two records apart in the first pass is not two
  namesakes), and ``u_value = others / clusters``. Where ``u_value`` exceeds the level's
  ``u``, the pair loses ``log2(u / u_value)`` bits. There is no bonus for a value nobody else
  holds: the average ``u`` is the one EM and the thresholds were fitted with.

Measured on FEBRL4 (docs/linkage.md, "Spec v4"): of the 15 links that joined two persons under
spec v3, most were namesakes (e.g. two "william matthews" with unrelated dates of birth, linked
at +0.8 bits by the exact-names ladder alone).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.spec import ComparisonSpec

__all__ = ["frequency_adjustments", "level_columns", "persons_per_value"]


def level_columns(comparison: ComparisonSpec) -> dict[int, str]:
    """The token column whose equality gives each agreeing gamma level."""
    if comparison.kind == "exact":
        return {1: comparison.column}
    if comparison.kind == "exact_levels":
        columns = (comparison.column, *comparison.weaker_columns)
        return {len(columns) - k: column for k, column in enumerate(columns)}
    raise ValueError(f"{comparison.name}: frequency adjustment needs kind exact or exact_levels")


def persons_per_value(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, persons)``: each record's value code (-1 missing) and, per code, the number of
    distinct cluster labels holding it."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    codes = codes.astype(np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    held = codes >= 0
    if not held.any():
        return codes, np.zeros(len(uniques), dtype=np.int64)
    span = int(labels.max()) + 1
    pairs = np.unique(codes[held] * span + labels[held])
    return codes, np.bincount(pairs // span, minlength=len(uniques)).astype(np.int64)


def frequency_adjustments(encoded: pd.DataFrame, labels: np.ndarray, left: np.ndarray,
                          right: np.ndarray, gammas: pd.DataFrame, u: dict[str, np.ndarray],
                          comparisons: list[ComparisonSpec] | tuple[ComparisonSpec, ...]
                          ) -> np.ndarray:
    """The weight adjustment (log2, <= 0) of each pair.

    Args:
        encoded: The encoded records (the comparisons' token columns).
        labels: A cluster label per row of ``encoded`` (the first clustering pass, made
            without the adjusted comparisons).
        left, right: Row positions in ``encoded`` of each pair's two records.
        gammas: Each pair's ``gamma_<name>`` columns (the same rows as ``left``).
        u: The model's u per feature and level (what the weights were scored with).
        comparisons: The comparisons to adjust (``frequency_adjusted`` in the spec).
    """
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    adjustment = np.zeros(len(left))
    labels = np.asarray(labels, dtype=np.int64)
    n_persons = len(np.unique(labels))
    if not len(left) or n_persons == 0:
        return adjustment
    own = np.where(labels[left] == labels[right], 1, 2)  # clusters of the pair itself
    for comparison in comparisons:
        feature = comparison.gamma_column
        if feature not in gammas.columns or feature not in u:
            continue
        gamma = gammas[feature].to_numpy()
        for level, column in level_columns(comparison).items():
            rows = np.flatnonzero(gamma == level)
            if not len(rows) or column not in encoded.columns:
                continue
            codes, persons = persons_per_value(encoded[column].to_numpy(dtype=object), labels)
            if not len(persons):
                continue
            code = codes[left[rows]]
            others = np.where(code >= 0, persons[np.maximum(code, 0)] - own[rows], 0)
            u_value = others / n_persons
            u_level = float(u[feature][level])
            hit = u_value > u_level
            adjustment[rows[hit]] += np.log2(u_level / u_value[hit])
    return adjustment
