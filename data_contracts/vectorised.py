"""The contract's checks in one vectorised pass over a pandas frame (no Great Expectations).

`data_contracts.compiler.checks()` turns a contract into engine-neutral `Check`s, each named
after the Great Expectations expectation that implements it. This module evaluates the same
checks with GE's pandas semantics (GE 1.24, `expectations/metrics/column_map_metrics`):

* every check but `ExpectColumnValuesToNotBeNull` / `ExpectColumnValuesToBeNull` looks at the
  non-null values only (GE's map metrics filter nulls out of the domain);
* `MatchRegex` / `NotMatchRegex`: `str(value)` searched with `re.search` (pandas'
  `str.contains`), so a pattern anchors only where it says `^` / `$`;
* `BeInSet`: membership; `ValueLengthsToBeBetween`: `len(str(value))` within the bounds;
  `BeBetween`: the number within the bounds (inclusive, a bound may be None).

Text checks run once per distinct value of a column (`pandas.factorize`), so a column of
repeated codes costs a handful of regex calls. `tests/unit/test_check_engines.py` runs this and
GE on every contract's bad-input catalogue and requires the same rows for the same rules;
intake (`pipelines.ingest.validate`) uses this pass, GE renders the partner's Data Docs and runs
the suites partners run themselves (`pathlink check --engine gx`).

Results carry row numbers (the frame's row column) only, never a value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.compiler import Check

__all__ = ["CheckResult", "evaluate"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one frame (row numbers only, never values)."""

    check: Check
    element_count: int
    missing_count: int  # nulls in the checked column
    unexpected_rows: np.ndarray  # the row column's values where the check failed, frame order

    @property
    def unexpected_count(self) -> int:
        return len(self.unexpected_rows)

    @property
    def success(self) -> bool:
        return self.unexpected_count == 0


class _Column:
    """One column factorized once: null mask, distinct non-null values and their codes."""

    def __init__(self, series: pd.Series) -> None:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        self.codes = codes
        self.null = codes < 0
        self.uniques = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
        self._text: pd.Series | None = None

    @property
    def text(self) -> pd.Series:
        """The distinct values as GE's pandas metrics see them (`astype(str)`)."""
        if self._text is None:
            self._text = self.uniques.astype(str)
        return self._text

    def spread(self, per_unique: Any) -> np.ndarray:
        """A boolean per distinct value spread back over the rows (nulls: False)."""
        flags = np.asarray(per_unique, dtype=bool)
        out = np.zeros(len(self.codes), dtype=bool)
        present = ~self.null
        out[present] = flags[self.codes[present]]
        return out


def _bounds(values: Any, low: Any, high: Any) -> Any:
    inside = np.ones(len(values), dtype=bool)
    if low is not None:
        inside &= np.asarray(values >= low, dtype=bool)
    if high is not None:
        inside &= np.asarray(values <= high, dtype=bool)
    return inside


def _unexpected(check: Check, frame: pd.DataFrame, columns: dict[str, _Column]) -> np.ndarray:
    """Boolean mask of the rows where `check` fails (GE's pandas expression, per distinct
    value for text)."""
    name = check.kwargs["column"]
    kind = check.expectation
    if kind == "ExpectColumnValuesToBeBetween":
        numbers = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        present = ~np.isnan(numbers)
        out = np.zeros(len(numbers), dtype=bool)
        out[present] = ~_bounds(numbers[present], check.kwargs.get("min_value"),
                                check.kwargs.get("max_value"))
        return out
    if name not in columns:
        columns[name] = _Column(frame[name])
    column = columns[name]
    if kind == "ExpectColumnValuesToNotBeNull":
        return column.null.copy()
    if kind == "ExpectColumnValuesToBeNull":
        return ~column.null
    if kind == "ExpectColumnValuesToMatchRegex":
        return column.spread(~column.text.str.contains(check.kwargs["regex"]).to_numpy(bool))
    if kind == "ExpectColumnValuesToNotMatchRegex":
        return column.spread(column.text.str.contains(check.kwargs["regex"]).to_numpy(bool))
    if kind == "ExpectColumnValuesToBeInSet":
        return column.spread(~column.uniques.isin(check.kwargs["value_set"]).to_numpy(bool))
    if kind == "ExpectColumnValueLengthsToBeBetween":
        lengths = column.text.str.len().to_numpy()
        return column.spread(~_bounds(lengths, check.kwargs.get("min_value"),
                                      check.kwargs.get("max_value")))
    raise ValueError(f"no vectorised evaluation for {kind}")  # pragma: no cover


def evaluate(checks: Iterable[Check], frame: pd.DataFrame, row_column: str) -> list[CheckResult]:
    """Evaluate every check on `frame` in one pass, columns factorized once.

    Args:
        checks: From `data_contracts.compiler.checks()`.
        frame: The prepared frame (contract columns, derived columns, `row_column`).
        row_column: The column whose values identify rows in the results (`__row`).

    Returns:
        One `CheckResult` per check, in the checks' order.
    """
    rows = frame[row_column].to_numpy()
    columns: dict[str, _Column] = {}
    results = []
    for check in checks:
        name = check.kwargs["column"]
        mask = _unexpected(check, frame, columns)
        if name in columns:
            missing = int(columns[name].null.sum())
        else:
            missing = int(frame[name].isna().sum())
        results.append(CheckResult(check, len(frame), missing, rows[mask]))
    return results
