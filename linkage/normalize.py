"""Normalize raw participant records into comparable, validated fields.

`normalize_participants` turns the canonical raw participant columns (all strings or NaN) into
the cleaned columns listed in `docs/architecture.md`. Every field is computed once per distinct
input value (`pandas.factorize`) and cached, so heavily repeated values cost almost nothing.

Choices:
- Phonetic codes use NYSIIS (`jellyfish.nysiis`, untruncated): designed for personal names and
  more discriminating than Soundex; computed on `given_name` and on the whole `family_name`.
- Nicknames resolve through the `nicknames` package plus a short curated table for the common
  short forms the package leaves ambiguous (see `linkage._names`).
- `dob` holds a date only when `dob_issue` is None; `ssn` only when `ssn_issue` is None.

No function here logs, and no error message carries an input value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import jellyfish
import numpy as np
import pandas as pd
import phonenumbers

from linkage._address import clean_city, clean_state, clean_zip5, standardize_street
from linkage._names import (
    SUFFIXES,
    canonical_given_name,
    clean_name,
    parse_suffix,
    split_surname,
)

__all__ = [
    "DATE_ISSUES",
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "SUFFIXES",
    "ValueMemo",
    "date_issue",
    "normalize_participants",
    "parse_date",
    "ssn_issue",
]

#: Canonical raw participant columns read by `normalize_participants` (others are ignored).
INPUT_COLUMNS = (
    "partner_record_id", "first_name", "middle_name", "last_name", "suffix", "date_of_birth",
    "ssn", "sex", "street_address", "city", "state", "zip", "phone", "email",
)  # fmt: skip

#: Columns of the frame `normalize_participants` returns, in order.
OUTPUT_COLUMNS = (
    "given_name", "given_name_canonical", "middle_name", "middle_initial", "family_name",
    "family_name_first", "family_name_last", "suffix", "dob", "dob_issue", "ssn", "ssn_issue",
    "sex", "phone", "email", "street", "city", "state", "zip5", "zip3", "given_name_phonetic",
    "family_name_phonetic",
)  # fmt: skip

MAX_AGE_YEARS = 110

_NON_DIGITS = re.compile(r"[^0-9]+")
_SCIENTIFIC = re.compile(r"[0-9](?:\.[0-9]+)?[eE]\+?[0-9]+")
_SSN_PLACEHOLDERS = frozenset(
    {str(digit) * 9 for digit in range(10)} | {"123456789", "987654321", "012345678"}
)
# Numbers published in advertising or by the SSA as examples (incl. 987-65-4320..4329).
_SSN_SAMPLES = frozenset(
    {"078051120", "219099999", "457555462"} | {f"98765432{digit}" for digit in range(10)}
)
_ITIN_GROUPS = frozenset([*range(50, 66), *range(70, 89), *range(90, 93), *range(94, 100)])

_SEX_CODES = MappingProxyType(
    {
        "f": "F",
        "female": "F",
        "w": "F",
        "woman": "F",
        "m": "M",
        "male": "M",
        "man": "M",
        "x": "X",
        "nonbinary": "X",
        "nb": "X",
    }
)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


# ---------------------------------------------------------------------------------------------
# Dates


_TIME = (r"(?:[T ]\s*\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?\s*(?:[AaPp]\.?[Mm]\.?)?"
         r"\s*(?:Z|[+-]\d{2}:?\d{2})?)?")
_DATE_FORMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern + _TIME, re.ASCII), order) for pattern, order in (
        (r"(\d{4})-(\d{1,2})-(\d{1,2})", "ymd"),        # ISO, with or without a time part
        (r"(\d{4})/(\d{1,2})/(\d{1,2})", "ymd"),        # year first with slashes
        (r"(\d{1,2})/(\d{1,2})/(\d{4})", "mdy"),        # M/D/YYYY, padded or not
        (r"(\d{1,2})-(\d{1,2})-(\d{4})", "mdy"),        # M-D-YYYY
        (r"(\d{4})(\d{2})(\d{2})", "ymd"),              # YYYYMMDD
    )
)
_MONTHS = {name: number for number, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
    ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
    ("oct", "october"), ("nov", "november"), ("dec", "december")), start=1) for name in names}
_MONTH_FIRST = re.compile(r"([A-Za-z]{3,9})\.?\s+(\d{1,2}),?\s+(\d{2}|\d{4})" + _TIME)
_DAY_MONTH = re.compile(r"(\d{1,2})[-\s]([A-Za-z]{3,9})\.?[-\s,]\s*(\d{2}|\d{4})" + _TIME)
_TWO_DIGIT_YEAR = re.compile(r"\d{1,2}[/-]\d{1,2}[/-]\d{2}" + _TIME, re.ASCII)
_DOTTED = re.compile(r"\d{1,2}\.\d{1,2}\.(?:\d{2}|\d{4})" + _TIME, re.ASCII)
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?", re.ASCII)

#: Why a date text is not a date: the codes `date_issue` gives (docs/contracts.md).
DATE_ISSUES = ("unparseable", "impossible", "two_digit_year", "day_first", "excel_serial")


@lru_cache(maxsize=65536)
def _read_date(text: str) -> tuple[dt.date | None, str | None]:
    """(date, None) or (None, why): the one strict reading of a date as partners export it."""
    text = text.strip()
    for pattern, order in _DATE_FORMS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        first, second, third = (int(part) for part in match.groups())
        if order == "ymd":
            year, month, day = first, second, third
        else:
            if first > 12 and second <= 12:  # 25/12/1990 is day first: never guessed
                return None, "day_first"
            month, day, year = first, second, third
        return _checked(year, month, day)
    for pattern, month_group in ((_MONTH_FIRST, 0), (_DAY_MONTH, 1)):
        match = pattern.fullmatch(text)
        if match is None:
            continue
        parts = match.groups()
        month = _MONTHS.get(parts[month_group].lower())
        if month is None:
            return None, "unparseable"
        if len(parts[2]) == 2:
            return None, "two_digit_year"
        day = int(parts[1 - month_group])
        return _checked(int(parts[2]), month, day)
    if _TWO_DIGIT_YEAR.fullmatch(text):
        return None, "two_digit_year"
    if _DOTTED.fullmatch(text):
        return None, "day_first"
    if _SERIAL.fullmatch(text):
        return None, "excel_serial"
    return None, "unparseable"


def _checked(year: int, month: int, day: int) -> tuple[dt.date | None, str | None]:
    try:
        return dt.date(year, month, day), None
    except ValueError:
        return None, "impossible"


def parse_date(text: str | None) -> dt.date | None:
    """Parse a date as partners export it; None for anything else.

    Accepted: `YYYY-MM-DD` and `YYYY/MM/DD` (month and day padded or not), `M/D/YYYY` and
    `M-D-YYYY` (padded or not: US order), `YYYYMMDD`, month names with a four-digit year
    (`Jul 3, 1982`, `3-Jul-1982`), each optionally followed by a time part (`T00:00:00`,
    ` 0:00`, ` 12:00:00 AM`, `Z` or an offset), which is ignored. Never guessed: two-digit
    years, day-first forms (`25/12/1990`, `25.12.1990`) and bare numbers (an Excel serial in
    a CSV) give None; `date_issue` says which. A day that does not exist gives None.

    Args:
        text: Raw date text, or None.

    Returns:
        The date, or None.
    """
    if not isinstance(text, str):
        return None
    return _read_date(text)[0]


def date_issue(text: str | None) -> str | None:
    """None when `parse_date` reads `text`; else one of `DATE_ISSUES` (`missing` if blank)."""
    if not isinstance(text, str) or not text.strip():
        return "missing"
    return _read_date(text)[1]


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a non-leap target year
        return day.replace(year=day.year - years, day=28)


def _dob_fields(text: str | None, as_of: dt.date) -> tuple[str | None, str | None]:
    """(ISO dob or None, dob_issue or None) for one raw date of birth."""
    if text is None or not text.strip():
        return None, "missing"
    dob, issue = _read_date(text)
    if dob is None:
        return None, issue
    if dob > as_of:
        return None, "future"
    if dob < _years_before(as_of, MAX_AGE_YEARS):
        return None, "too_old"
    return dob.isoformat(), None


# ---------------------------------------------------------------------------------------------
# Identifiers and contact fields


@lru_cache(maxsize=131072)
def ssn_issue(text: str | None) -> str | None:
    """Classify a raw SSN; None means it is a plausible, issuable SSN.

    Non-digits are stripped first. Codes: `missing` (blank), `scientific_notation` (a number
    a spreadsheet showed as `2.12E+08`: its digits are lost), `malformed` (not 9 digits),
    `placeholder` (one repeated digit, 123456789, ...), `sample` (078-05-1120, 219-09-9999,
    457-55-5462, 987-65-432x), `invalid_area` (000, 666, or 9xx outside ITIN groups), `itin`
    (9xx with group 50-65, 70-88, 90-92, 94-99), `invalid_group` (00), `invalid_serial` (0000).

    Args:
        text: Raw SSN text, or None.

    Returns:
        The issue code, or None.
    """
    if not isinstance(text, str) or not text.strip():
        return "missing"
    if _SCIENTIFIC.fullmatch(text.strip()):
        return "scientific_notation"
    digits = _NON_DIGITS.sub("", text)
    if len(digits) != 9:
        return "malformed"
    if digits in _SSN_PLACEHOLDERS:
        return "placeholder"
    if digits in _SSN_SAMPLES:
        return "sample"
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in {"000", "666"}:
        return "invalid_area"
    if area.startswith("9"):
        return "itin" if int(group) in _ITIN_GROUPS else "invalid_area"
    if group == "00":
        return "invalid_group"
    if serial == "0000":
        return "invalid_serial"
    return None


def _valid_ssn(text: str) -> str | None:
    return _NON_DIGITS.sub("", text) if ssn_issue(text) is None else None


def _sex_code(text: str) -> str | None:
    return _SEX_CODES.get(re.sub(r"[^a-z]+", "", text.lower()))


def _phone_e164(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(text: str) -> str | None:
    email = text.strip().lower()
    if not _EMAIL.fullmatch(email):
        return None
    domain = email.rsplit("@", 1)[1]
    if domain.startswith(".") or domain.endswith(".") or ".." in domain:
        return None
    return email


# ---------------------------------------------------------------------------------------------
# Frame plumbing


def _column(raw: pd.DataFrame, name: str) -> pd.Series:
    """The raw column as object strings with NaN/None -> None; all None when absent."""
    if name not in raw.columns:
        return pd.Series([None] * len(raw), index=raw.index, dtype=object)
    column = raw[name].astype(object)
    column = column.where(column.notna(), None)
    return column.map(
        lambda value: value if value is None or isinstance(value, str) else str(value)
    )


def _map_unique(
    values: pd.Series, func: Callable[[Any], Any], *, na_value: Any = None
) -> np.ndarray:
    """Apply `func` once per distinct non-null value; nulls get `na_value`. Object array."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    for position, value in enumerate(uniques):
        mapped[position] = func(value)
    mapped[-1] = na_value
    return mapped[codes]


def _split(pairs: np.ndarray, width: int) -> list[np.ndarray]:
    """Split an object array of `width`-tuples into `width` object arrays."""
    columns = [np.empty(len(pairs), dtype=object) for _ in range(width)]
    for row, values in enumerate(pairs):
        for position in range(width):
            columns[position][row] = values[position]
    return columns


def _map_unique_tuple(
    values: pd.Series, func: Callable[[Any], tuple[Any, ...]], na_value: tuple[Any, ...]
) -> list[np.ndarray]:
    """Like `_map_unique` for a function returning a fixed-width tuple; one array per item."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    per_unique = np.empty(len(uniques) + 1, dtype=object)
    for position, value in enumerate(uniques):
        per_unique[position] = func(value)
    per_unique[-1] = na_value
    return [column[codes] for column in _split(per_unique, len(na_value))]


def _map_array(values: np.ndarray, func: Callable[[Hashable], Any]) -> np.ndarray:
    """`_map_unique` over an object array of already-cleaned values."""
    return _map_unique(pd.Series(values, dtype=object), func)


def _first_letter(name: str) -> str:
    return name[0]


# ---------------------------------------------------------------------------------------------
# The two costly fields on a second process

#: Below this many distinct values a field is normalized in this process only: shipping values
#: to another process costs more than it saves.
PARALLEL_MIN_VALUES = 2_000
#: Chunks per side: the helper takes chunks from the front of its queue, this process takes
#: back the ones it has not started (so a busy helper costs nothing but the wait for one chunk).
_CHUNKS_PER_SIDE = 4


class ValueMemo:
    """Phones and street addresses one run has already standardized (value -> result).

    The caller makes one for a run and hands it to each `normalize_participants` call: the
    partners' files of a month share many addresses and phones (a held-out 100k-record month:
    90,990 distinct raw addresses, street with city, state and ZIP, summed over the partners'
    files, 70,287 across them), and each is parsed once. It holds
    raw values, so it lives in memory only and only as long as the run that made it. At most
    `limit` values per field are kept (later ones are computed, not remembered).
    """

    def __init__(self, limit: int = 250_000) -> None:
        self.limit = limit
        self._known: dict[str, dict[Hashable, Any]] = {}

    def __repr__(self) -> str:  # never the values
        return f"ValueMemo({sum(len(k) for k in self._known.values())} values)"

    def map(self, field: str, items: list[Any],
            compute: Callable[[list[Any]], list[Any]]) -> list[Any]:
        """`compute(items)` for distinct `items`, computing only those not seen before."""
        known = self._known.setdefault(field, {})
        missing = [item for item in items if item not in known]
        fresh = dict(zip(missing, compute(missing), strict=True)) if missing else {}
        for item in missing[: max(self.limit - len(known), 0)]:
            known[item] = fresh[item]
        return [fresh[item] if item in fresh else known[item] for item in items]


def phones_e164(values: list[str]) -> list[str | None]:
    """`_phone_e164` of each value (a picklable job for a helper process)."""
    return [_phone_e164(v) for v in values]


def streets_standardized(items: list[tuple[str, str | None, str | None, str | None]]
                         ) -> list[str | None]:
    """`standardize_street(street, city, state, zip5)` of each tuple (a helper-process job)."""
    return [standardize_street(*item) for item in items]


def _shared_map(items: list[Any], job: Callable[[list[Any]], list[Any]],
                executor: Executor | None) -> list[Any]:
    """`job(items)`, half of it in `executor`'s process when there are enough items.

    The other process's half goes as chunks; this process does its half, then takes back
    every chunk the other has not started. The result is the same as `job(items)`.
    """
    if executor is None or len(items) < PARALLEL_MIN_VALUES:
        return job(items)
    chunks = np.array_split(np.arange(len(items)), 2 * _CHUNKS_PER_SIDE)
    parts = [[items[i] for i in chunk] for chunk in chunks]
    mine, theirs = parts[:_CHUNKS_PER_SIDE], parts[_CHUNKS_PER_SIDE:]
    try:
        futures = [executor.submit(job, part) for part in theirs]
    except RuntimeError:  # the executor was shut down
        return job(items)
    results = [job(part) for part in mine]
    remote: list[list[Any]] = []
    for part, future in zip(reversed(theirs), reversed(futures), strict=True):
        if future.cancel():
            remote.append(job(part))
            continue
        try:
            remote.append(future.result())
        except Exception:  # the other process failed (e.g. it died): do the chunk here
            remote.append(job(part))
    results.extend(reversed(remote))
    return [value for part in results for value in part]


def _memo_shared_map(field: str, items: list[Any], job: Callable[[list[Any]], list[Any]],
                     executor: Executor | None, memo: ValueMemo | None) -> list[Any]:
    """`_shared_map`, skipping the items `memo` already knows (distinct `items`)."""
    if memo is None:
        return _shared_map(items, job, executor)
    return memo.map(field, items, lambda missing: _shared_map(missing, job, executor))


def _map_unique_shared(values: pd.Series, job: Callable[[list[Any]], list[Any]],
                       executor: Executor | None, memo: ValueMemo | None = None,
                       field: str = "") -> np.ndarray:
    """`_map_unique` for a field whose per-value function is costly, shared with `executor`."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[: len(uniques)] = _memo_shared_map(field, list(uniques), job, executor, memo)
    mapped[-1] = None
    return mapped[codes]


# ---------------------------------------------------------------------------------------------
# Public entry point


def normalize_participants(raw: pd.DataFrame, *, as_of: dt.date,
                           executor: Executor | None = None,
                           memo: ValueMemo | None = None) -> pd.DataFrame:
    """Normalize raw participant records (see `docs/architecture.md`, `linkage/normalize.py`).

    Args:
        raw: Raw participant rows; any of `INPUT_COLUMNS` may be absent, empty or NaN.
        as_of: Reference date for the `future` and `too_old` date-of-birth checks.
        executor: Another process (e.g. a one-worker `ProcessPoolExecutor`) to standardize
            half of the distinct street addresses and phone numbers (the costly fields) while
            this process does the rest; the result is the same without it.
        memo: The run's `ValueMemo`: addresses and phones an earlier file of the run had are
            not standardized again; the result is the same without it.

    Returns:
        A new frame with `raw`'s index and exactly `OUTPUT_COLUMNS` (object dtype, None where
        a value is absent or invalid).
    """
    out: dict[str, np.ndarray] = {}

    given = _map_unique(_column(raw, "first_name"), clean_name)
    out["given_name"] = given
    out["given_name_canonical"] = _map_array(given, canonical_given_name)
    middle = _map_unique(_column(raw, "middle_name"), clean_name)
    out["middle_name"] = middle
    out["middle_initial"] = _map_array(middle, _first_letter)

    family, family_first, family_last, trailing_suffix = _map_unique_tuple(
        _column(raw, "last_name"), split_surname, (None, None, None, None)
    )
    out["family_name"] = family
    out["family_name_first"] = family_first
    out["family_name_last"] = family_last
    column_suffix = _map_unique(_column(raw, "suffix"), parse_suffix)
    out["suffix"] = np.where(pd.isna(column_suffix), trailing_suffix, column_suffix)

    out["dob"], out["dob_issue"] = _map_unique_tuple(
        _column(raw, "date_of_birth"),
        lambda text: _dob_fields(text, as_of),
        (None, "missing"),
    )

    ssn_raw = _column(raw, "ssn")
    out["ssn"] = _map_unique(ssn_raw, _valid_ssn)
    out["ssn_issue"] = _map_unique(ssn_raw, ssn_issue, na_value="missing")

    out["sex"] = _map_unique(_column(raw, "sex"), _sex_code)
    out["phone"] = _map_unique_shared(_column(raw, "phone"), phones_e164, executor, memo,
                                      "phone")
    out["email"] = _map_unique(_column(raw, "email"), _email)

    city = _map_unique(_column(raw, "city"), clean_city)
    state = _map_unique(_column(raw, "state"), clean_state)
    zip5 = _map_unique(_column(raw, "zip"), clean_zip5)
    out["street"] = _street(_column(raw, "street_address"), city, state, zip5, executor, memo)
    out["city"] = city
    out["state"] = state
    out["zip5"] = zip5
    out["zip3"] = _map_array(zip5, lambda code: code[:3])

    out["given_name_phonetic"] = _map_array(given, jellyfish.nysiis)
    out["family_name_phonetic"] = _map_array(family, jellyfish.nysiis)

    normalized = pd.DataFrame(
        {name: out[name] for name in OUTPUT_COLUMNS}, index=raw.index, dtype=object
    )
    return normalized.where(normalized.notna(), None)


def _street(
    street_raw: pd.Series, city: np.ndarray, state: np.ndarray, zip5: np.ndarray,
    executor: Executor | None = None, memo: ValueMemo | None = None,
) -> np.ndarray:
    """Standardized street per row, running scourgify once per distinct address."""
    address = pd.DataFrame(
        {"street": street_raw.to_numpy(), "city": city, "state": state, "zip5": zip5}
    )
    has_street = address["street"].notna().to_numpy()
    result = np.full(len(address), None, dtype=object)
    if not has_street.any():
        return result
    present = address[has_street]
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(present.fillna("")))
    items = [(street, city_u or None, state_u or None, zip_u or None)
             for street, city_u, state_u, zip_u in uniques]
    standardized = np.empty(len(items), dtype=object)
    standardized[:] = _memo_shared_map("street", items, streets_standardized, executor, memo)
    result[has_street] = standardized[codes]
    return result
