"""Normalized and derived input columns, cleaned and factorized once per distinct value."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

UNIT_SEPARATOR = "\x1f"


def clean_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Factorize a column: codes (-1 for missing, NaN or empty) into distinct str values.

    Non-str values are compared as ``str(value)``. Cleaning the distinct values, not every
    row, keeps this cheap.
    """
    codes, uniques = pd.factorize(column.to_numpy(dtype=object), sort=False,
                                  use_na_sentinel=True)
    codes = codes.astype(np.int64)
    uniques = np.asarray(uniques, dtype=object)
    if pd.api.types.infer_dtype(uniques, skipna=True) not in ("string", "empty"):
        remap, uniques = pd.factorize(np.array([str(u) for u in uniques], dtype=object),
                                      sort=False)
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
        uniques = np.asarray(uniques, dtype=object)
    keep = uniques != ""
    if not keep.all():
        remap = np.cumsum(keep) - 1
        remap[~keep] = -1
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
        uniques = uniques[keep]
    return codes, uniques


@dataclass(frozen=True)
class Factorized:
    """A column as codes (-1 = missing) into distinct values, plus their UTF-8 bytes."""

    codes: np.ndarray
    uniques: np.ndarray
    buffer: np.ndarray
    offsets: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> Factorized:
        """Factorize clean values (str or None)."""
        codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
        return cls.from_codes(codes.astype(np.int64), np.asarray(uniques, dtype=object))

    @classmethod
    def from_codes(cls, codes: np.ndarray, uniques: np.ndarray) -> Factorized:
        """Codes into distinct str values; adds the values' UTF-8 bytes as CSR."""
        joined = "".join(uniques)
        if joined.isascii():
            buffer = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
            lengths = np.fromiter(map(len, uniques), dtype=np.int64, count=len(uniques))
        else:
            encoded = [u.encode("utf-8") for u in uniques]
            buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        offsets = np.zeros(len(uniques) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(codes, uniques, buffer, offsets)

    def mapped(self, function: Callable[[str], str | None]) -> Factorized:
        """The column with ``function`` applied to every value (computed per distinct value);
        a value mapped to None or "" becomes missing."""
        if len(self.uniques) == 0:
            return self
        mapped = pd.Series([function(u) for u in self.uniques], dtype=object)
        remap, uniques = clean_codes(mapped)
        codes = np.where(self.codes >= 0, remap[np.maximum(self.codes, 0)], -1)
        return Factorized.from_codes(codes.astype(np.int64), np.asarray(uniques, dtype=object))

    def values(self) -> np.ndarray:
        """Object array of the values, None where missing."""
        out = np.full(len(self.codes), None, dtype=object)
        present = self.codes >= 0
        out[present] = self.uniques[self.codes[present]]
        return out

    @classmethod
    def stacked(cls, parts: Sequence[Factorized]) -> tuple[Factorized, np.ndarray]:
        """Concatenate the distinct values of ``parts`` (a value may repeat across parts).

        Returns the joint vocabulary (its ``codes`` unused) and ``(n_parts, n_rows)`` codes
        into it, -1 for missing.
        """
        bases = np.cumsum([0] + [len(p.uniques) for p in parts[:-1]])
        byte_bases = np.cumsum([0] + [len(p.buffer) for p in parts[:-1]])
        codes = np.stack([np.where(p.codes >= 0, p.codes + base, -1)
                          for p, base in zip(parts, bases, strict=True)])
        offsets = np.concatenate([parts[0].offsets[:1]] + [
            p.offsets[1:] + byte_base for p, byte_base in zip(parts, byte_bases, strict=True)])
        joint = cls(np.zeros(0, dtype=np.int64),
                    np.concatenate([p.uniques for p in parts]),
                    np.concatenate([p.buffer for p in parts]), offsets.astype(np.int64))
        return joint, codes


def factorize_rows(columns) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the distinct rows of equal-length int columns (values >= -1), and the position
    of one row per code (its first occurrence)."""
    combined = None
    for column in columns:
        column = np.asarray(column, dtype=np.int64) + 1
        if combined is None:
            combined = column
        else:
            base = int(column.max()) + 1 if len(column) else 1
            combined = combined * base + column
        combined = pd.factorize(combined, sort=False)[0].astype(np.int64)
    if combined is None or len(combined) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n_units = int(combined.max()) + 1
    first = np.empty(n_units, dtype=np.int64)
    first[combined[::-1]] = np.arange(len(combined) - 1, -1, -1, dtype=np.int64)
    return combined, first


def _unordered(dob: str) -> str:
    year, month, day = dob.split("-", 2)
    return f"{year}-{min(month, day)}-{max(month, day)}"


#: Derived fields computed per distinct value of their source field (ISO ``dob``).
PER_VALUE: dict[str, tuple[str, Callable[[str], str | None]]] = {
    "given_name_initial": ("given_name", lambda v: v[0]),
    "birth_year": ("dob", lambda v: v[:4]),
    "dob_year_month": ("dob", lambda v: v[:7]),
    "dob_year_day": ("dob", lambda v: v[:4] + v[7:]),
    "dob_month_day": ("dob", lambda v: v[5:]),
    "dob_unordered": ("dob", _unordered),
}


class Columns:
    """Lazily cleaned normalized and derived columns of one normalized frame."""

    def __init__(self, normalized: pd.DataFrame) -> None:
        self._frame = normalized
        self._cache: dict[str, np.ndarray] = {}
        self._factorized: dict[str | tuple[str, ...], Factorized] = {}

    def __len__(self) -> int:
        return len(self._frame)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            if name in self._frame.columns or name in PER_VALUE:
                self._cache[name] = self.factorized(name).values()
            else:
                self._cache[name] = self._compute(name)
        return self._cache[name]

    def factorized(self, name: str) -> Factorized:
        """The column ``name`` (normalized or derived) factorized; missing = -1."""
        if name not in self._factorized:
            if name in self._frame.columns:
                fact = Factorized.from_codes(*clean_codes(self._frame[name]))
            elif name in PER_VALUE:
                source, function = PER_VALUE[name]
                fact = self.factorized(source).mapped(function)
            else:
                fact = Factorized.of(self[name])
            self._factorized[name] = fact
        return self._factorized[name]

    def joined(self, names: tuple[str, ...]) -> Factorized:
        """Several columns' values joined by ``\\x1f`` (missing when any is missing)."""
        if len(names) == 1:
            return self.factorized(names[0])
        if names not in self._factorized:
            facts = [self.factorized(n) for n in names]
            codes = np.stack([f.codes for f in facts])
            present = (codes >= 0).all(axis=0)
            values = np.full(len(self), None, dtype=object)
            if present.any():
                inverse, first = factorize_rows(list(codes[:, present]))
                rows = codes[:, present][:, first]
                texts = np.array([UNIT_SEPARATOR.join(f.uniques[c] for f, c in
                                                      zip(facts, col, strict=True))
                                  for col in rows.T], dtype=object)
                values[present] = texts[inverse]
            self._factorized[names] = Factorized.of(values)
        return self._factorized[names]

    def _compute(self, name: str) -> np.ndarray:
        out = np.full(len(self._frame), None, dtype=object)
        if name == "name_pair":
            low, high = self["name_pair_low"], self["name_pair_high"]
            both = ~pd.isna(low)
            out[both] = [f"{a}{UNIT_SEPARATOR}{b}" for a, b in zip(low[both], high[both],
                                                                   strict=True)]
        if name in ("name_pair_low", "name_pair_high"):
            given, family = self["given_name"], self["family_name"]
            both = ~pd.isna(given) & ~pd.isna(family)
            g, f = given[both], family[both]
            first = (g <= f) if name == "name_pair_low" else (g > f)
            out[both] = np.where(first, g, f)
        return out
