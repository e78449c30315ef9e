"""Per-person aggregations for the release, vectorised (no Python call per person).

Each takes a frame already in the order that decides ties (records by period, then record key)
and returns one value per group, indexed by the group key.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def mode_first_seen(frame: pd.DataFrame, by: str, column: str) -> pd.Series:
    """Per `by` group, the most frequent non-null `column` value; ties go to the value seen
    first in `frame`'s order. A group with no value is absent from the result.

    Vectorised: counts and first positions per (group, value), one sort, first row per group.
    """
    values = frame[[by, column]].assign(__pos=np.arange(len(frame)))
    values = values[values[column].notna()]
    stats = values.groupby([by, column], sort=False, dropna=True).agg(
        __n=("__pos", "size"), __first=("__pos", "min")).reset_index()
    stats = stats.sort_values([by, "__n", "__first"], ascending=[True, False, True],
                              kind="stable")
    best = stats.drop_duplicates(by, keep="first")
    return best.set_index(by)[column]


def last_known(frame: pd.DataFrame, by: str, column: str) -> pd.Series:
    """Per `by` group, the last non-null `column` value in `frame`'s order (absent if none)."""
    known = frame.loc[frame[column].notna(), [by, column]]
    return known.drop_duplicates(by, keep="last").set_index(by)[column]


def smallest(frame: pd.DataFrame, by: str, column: str) -> pd.Series:
    """Per `by` group, the smallest non-null `column` value (absent if none), for values of
    one sortable type (periods and months as 'YYYY-MM' strings).

    Vectorised: the values' ranks among the sorted distinct values, a minimum of integers per
    group (pandas runs a Python function per group for the minimum of strings).
    """
    known = frame.loc[frame[column].notna(), [by, column]]
    ranks, ordered = pd.factorize(known[column], sort=True)
    least = pd.Series(ranks, index=known.index).groupby(known[by], sort=True).min()
    return pd.Series(np.asarray(ordered, dtype=object)[least.to_numpy()], index=least.index,
                     name=column, dtype=object)


def any_equal(frame: pd.DataFrame, groups: pd.Index, by: str, column: str,
              value: object) -> np.ndarray:
    """Per group of `groups` (every `by` value in `frame`), whether any row's `column` is
    `value`: one boolean per group, in `groups`' order."""
    positions = groups.get_indexer(frame[by])
    hits = positions[frame[column].eq(value).to_numpy(dtype=bool, na_value=False)]
    return np.bincount(hits, minlength=len(groups)) > 0
