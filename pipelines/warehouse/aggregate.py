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
