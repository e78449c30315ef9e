"""Intake: read partner files as text and validate them against their data contract.

`read_table` turns a CSV / XLSX / Parquet drop into a DataFrame of strings with a `__row`
column (the row number the partner sees in a spreadsheet). `validate_table` checks it with
the Great Expectations suite compiled from `data_contracts/<dataset>.yaml` and splits it into
accepted and quarantined rows. Nothing here ever puts a data value into a message: issues,
exceptions and reports name only the file, row, field and rule.

Decisions (see docs/contracts.md):
- A header-only file is accepted with 0 rows ("nothing this period") and reported.
- Completely empty rows are skipped (not counted as read).
- Duplicate keys: exact duplicate rows keep the first and quarantine the rest
  (`duplicate_row`); rows sharing a key but differing elsewhere are all quarantined
  (`conflicting_duplicate`): we cannot know which one is right.
- Severity `warning` keeps the row and nulls the field in `accepted`; `error` quarantines.
- A rejected file (missing required column, too many bad rows) publishes nothing: every row
  moves to `quarantined`, so read == accepted + quarantined still holds.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
import threading
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from data_contracts import DATASETS, Contract, Rule, load_contract
from data_contracts import contract_version as _contract_version
from data_contracts.compiler import (
    NUMBER_REGEX,
    READ_ISSUE_COLUMN,
    ROW_COLUMN,
    all_rules,
    checks,
    compile_suite,
    derivations,
    gx_context,
    suite_name,
)
from keys.secret import KEY_ID_PATTERN

ROW = ROW_COLUMN
REASONS = "reasons"
CSV_FIELD_LIMIT = 32 * 1024 * 1024  # a 10 MB field reads; the contract's maxLength flags it
MAX_FILE_BYTES = 512 * 1024 * 1024
DELIMITERS = (",", ";", "|", "\t")
FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
           ".parquet": "parquet"}
PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
PARTNER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_DATE_SHAPE = re.compile(r"^\s*(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4}|\d{8})\s*$")
_NUMBER = re.compile(NUMBER_REGEX)
_SAFE_HEADER = re.compile(r"^[A-Za-z0-9 _\-/#().]{1,64}$")
_RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": [ROW],
                  "exclude_unexpected_values": True}

csv.field_size_limit(CSV_FIELD_LIMIT)


# -- normalize.py adapter (parse_date / ssn_issue) ---------------------------------------------
def _local_parse_date(text: str | None) -> date | None:
    if not isinstance(text, str):
        return None
    text = text.strip()
    shapes = ((r"(\d{4})-(\d{1,2})-(\d{1,2})", "ymd"), (r"(\d{1,2})/(\d{1,2})/(\d{4})", "mdy"),
              (r"(\d{4})(\d{2})(\d{2})", "ymd"))
    for pattern, order in shapes:
        if match := re.fullmatch(pattern, text):
            a, b, c = (int(g) for g in match.groups())
            y, m, d = (a, b, c) if order == "ymd" else (c, a, b)
            try:
                return date(y, m, d)
            except ValueError:
                return None
    return None


def _local_ssn_issue(text: str | None) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return "missing"
    digits = re.sub(r"\D", "", text)
    if len(digits) != 9:
        return "malformed"
    if len(set(digits)) == 1 or digits in {"123456789", "987654321"}:
        return "placeholder"
    if digits in {"078051120", "219099999", "457555462"} or digits.startswith("98765432"):
        return "sample"
    area, group, serial = digits[:3], int(digits[3:5]), digits[5:]
    if area in {"000", "666"}:
        return "invalid_area"
    if area.startswith("9"):
        itin = 50 <= group <= 65 or 70 <= group <= 88 or 90 <= group <= 92 or 94 <= group <= 99
        return "itin" if itin else "invalid_area"
    if group == 0:
        return "invalid_group"
    if serial == "0000":
        return "invalid_serial"
    return None


try:  # the shared implementation, when present
    from linkage.normalize import parse_date as _parse_date
    from linkage.normalize import ssn_issue as _ssn_issue
except ImportError:  # pragma: no cover - only before linkage.normalize exists
    _parse_date, _ssn_issue = _local_parse_date, _local_ssn_issue


# -- public types --------------------------------------------------------------------------------
class FileRejected(Exception):
    """A whole file cannot be used. The message names the file, never a data value."""

    def __init__(self, file: str, reason: str, *, row: int | None = None,
                 field: str | None = None, code: str = "rejected") -> None:
        self.file, self.reason, self.row, self.field, self.code = file, reason, row, field, code
        where = ", ".join(part for part in (f"row {row}" if row is not None else "",
                                            f"field {field}" if field else "") if part)
        super().__init__(f"{file}: {reason}" + (f" ({where})" if where else ""))


@dataclass(frozen=True)
class Issue:
    """One finding. `row` is the partner's row number (0 = the whole file)."""

    row: int
    field: str
    rule: str
    severity: str  # "error" | "warning"
    message: str


@dataclass
class ReadResult:
    """A file read as text: canonical column names, strings, and `__row`."""

    frame: pd.DataFrame
    source_name: str
    file_format: str
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    dropped_columns: list[str] = field(default_factory=list)
    skipped_empty_rows: int = 0

    @property
    def rows(self) -> int:
        return len(self.frame)


@dataclass
class ValidationOutcome:
    """What validation decided for one file. `read == accepted + quarantined` always."""

    dataset: str
    source_name: str
    contract: str
    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    issues: list[Issue]
    counts: dict[str, int]
    gx_result: Any
    file_verdict: str  # "accepted" | "rejected"
    reject_reason: str | None = None
    partner_id: str | None = None
    period: str | None = None

    def raise_if_rejected(self) -> None:
        if self.file_verdict != "accepted":
            raise FileRejected(self.source_name, self.reject_reason or "rejected")

    def gx_result_json(self) -> dict[str, Any] | None:
        return None if self.gx_result is None else self.gx_result.to_json_dict()


@dataclass(frozen=True)
class DropRef:
    """A validated landing path: landing/<partner_id>/<YYYY-MM>/<dataset>.<ext>."""

    partner_id: str
    period: str
    dataset: str
    path: Path
    rel_path: str = ""
    encoded: bool = False  # a partner-side encoded participants file (no raw PII)


@dataclass
class CheckReport:
    """`pathlink check` result for one file."""

    file: str
    dataset: str
    partner_id: str | None
    verdict: str
    reason: str | None
    counts: dict[str, int]
    issues: list[Issue]
    contract: str
    file_format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    outcome: ValidationOutcome | None = field(default=None, repr=False)


# -- helpers ---------------------------------------------------------------------------------
def display_name(path: Path) -> str:
    """A short, non-PII name for messages: <partner>/<period>/<file> for landing drops."""
    path = Path(path)
    if PERIOD_RE.match(path.parent.name) and path.parent.parent.name:
        return f"{path.parent.parent.name}/{path.parent.name}/{path.name}"
    return path.name


def canonical_header(text: str) -> str:
    """`' First Name '` -> `first_name`."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).strip().lstrip("\ufeff").lower()).strip("_")


def _safe_label(name: str) -> str:
    """A column header fit for a message (headers are partner-written, so keep them tame)."""
    return name if _SAFE_HEADER.match(name) else "(unprintable header)"


def _cell_text(value: Any) -> str:
    """Any cell value as the text a partner meant (formulas stay formulas, never evaluated)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | pd.Timestamp):
        if pd.isna(value):
            return ""
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if hasattr(value, "text") and not isinstance(value, bytes):  # openpyxl ArrayFormula
        text = str(value.text or "")
        return text if text.startswith("=") else "=" + text
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def _build_frame(name: str, header: list[str], records: Iterable[tuple[int, list[str]]],
                 column_map: Mapping[str, str] | None) -> tuple[pd.DataFrame, int]:
    """Map the header, pad/trim records, and build the string frame with `__row`."""
    mapped = _map_header(name, header, column_map)
    width = len(mapped)
    rows: list[int] = []
    data: list[list[str]] = []
    issues: list[str | None] = []
    skipped = 0
    for row_number, record in records:
        if not any(str(v).strip() for v in record):
            skipped += 1
            continue
        issue = None
        if len(record) > width:
            if any(str(v).strip() for v in record[width:]):
                issue = "malformed_row"
            record = record[:width]
        elif len(record) < width:
            record = [*record, *([""] * (width - len(record)))]
        rows.append(row_number)
        data.append(record)
        issues.append(issue)
    frame = pd.DataFrame(data, columns=mapped, dtype=object) if data else pd.DataFrame(
        {col: pd.Series(dtype=object) for col in mapped})
    frame[ROW] = pd.Series(rows, dtype="int64")
    frame[READ_ISSUE_COLUMN] = pd.Series(issues, dtype=object)
    return frame.reset_index(drop=True), skipped


def _map_header(name: str, header: list[str], column_map: Mapping[str, str] | None) -> list[str]:
    lookup: dict[str, str] = {}
    for theirs, ours in (column_map or {}).items():
        lookup[str(theirs)] = str(ours)
        lookup.setdefault(canonical_header(theirs), str(ours))
    out: list[str] = []
    for index, raw in enumerate(header):
        text = str(raw).strip().lstrip("\ufeff")
        target = lookup.get(text) or lookup.get(canonical_header(text)) or canonical_header(text)
        out.append(target or f"_unnamed_{index + 1}")
    seen: set[str] = set()
    for col in out:
        if col in seen:
            raise FileRejected(name, f"two columns in the header both map to '{_safe_label(col)}'",
                               row=1, code="duplicate_column")
        seen.add(col)
    return out


def _apply_value_map(frame: pd.DataFrame, value_map: Mapping[str, Mapping[str, str]] | None
                     ) -> None:
    for column, mapping in (value_map or {}).items():
        if column not in frame.columns or not mapping:
            continue
        lookup = {str(k).strip().casefold(): str(v) for k, v in mapping.items()}
        frame[column] = frame[column].map(
            lambda v, lk=lookup: lk.get(v.strip().casefold(), v) if isinstance(v, str) else v)


# -- reading -------------------------------------------------------------------------------
def _decode(data: bytes, name: str) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise FileRejected(name, "the file starts with a UTF-8 mark but is not UTF-8",
                               code="encoding") from exc
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise FileRejected(name, "the file is not valid UTF-16", code="encoding") from exc
    if data.count(b"\x00") > max(16, len(data) // 10):
        raise FileRejected(name, "the file looks binary, not CSV text", code="binary")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise FileRejected(name, "cannot tell the text encoding; save as UTF-8 CSV",
                           code="encoding")
    return str(best), str(best.encoding)


def _detect_delimiter(text: str) -> str:
    """The delimiter that splits the header line most (ties: , then ; | tab)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: len(next(csv.reader([first], delimiter=d), [])) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    if counts[best] > 1:
        return best
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return ","


def _read_csv(path: Path, name: str, column_map: Mapping[str, str] | None) -> ReadResult:
    data = path.read_bytes()
    if data.startswith(b"PK\x03\x04"):
        raise FileRejected(name, "this is a spreadsheet (XLSX) saved with a .csv name; "
                           "rename it to .xlsx", code="wrong_format")
    text, encoding = _decode(data, name)
    if not text.strip(" \t\r\n\x00\ufeff"):
        raise FileRejected(name, "the file is empty", code="empty")
    delimiter = _detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    row_number = 0
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    try:
        for record in reader:
            row_number += 1
            if header is None:
                if any(v.strip() for v in record):
                    header = record
                continue
            records.append((row_number, record))
    except csv.Error as exc:
        reason = ("a field is larger than the 32 MB limit" if "field limit" in str(exc)
                  else "the CSV cannot be parsed (unbalanced quotes?)")
        raise FileRejected(name, reason, row=row_number + 1, code="unparseable") from exc
    if header is None:
        raise FileRejected(name, "the file is empty", code="empty")
    frame, skipped = _build_frame(name, header, records, column_map)
    return ReadResult(frame, name, "csv", encoding=encoding, delimiter=delimiter,
                      skipped_empty_rows=skipped)


def _read_xlsx(path: Path, name: str, dataset: str | None,
               column_map: Mapping[str, str] | None) -> ReadResult:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError,
            TypeError, EOFError) as exc:
        raise FileRejected(name, "not a readable XLSX workbook (corrupt or another format)",
                           code="unreadable") from exc
    try:
        sheets = []
        for sheet in workbook.worksheets:
            rows = [(index, [_cell_text(v) for v in values]) for index, values in
                    enumerate(sheet.iter_rows(values_only=True), start=1)]
            if any(any(v.strip() for v in values) for _, values in rows):
                sheets.append((sheet.title, rows))
    finally:
        workbook.close()
    if not sheets:
        raise FileRejected(name, "the workbook is empty", code="empty")
    named = [s for s in sheets if dataset and canonical_header(s[0]) == dataset]
    if named:
        title, rows = named[0]
    elif len(sheets) == 1:
        title, rows = sheets[0]
    else:
        raise FileRejected(
            name, f"the workbook has {len(sheets)} sheets with data; keep one sheet or name "
            f"the data sheet '{dataset or 'the dataset'}'", code="multiple_sheets")
    start = next(i for i, (_, values) in enumerate(rows) if any(v.strip() for v in values))
    header = rows[start][1]
    while header and not header[-1].strip():
        header = header[:-1]
    frame, skipped = _build_frame(name, header, rows[start + 1:], column_map)
    return ReadResult(frame, name, "xlsx", sheet=title, skipped_empty_rows=skipped)


def _read_parquet(path: Path, name: str, column_map: Mapping[str, str] | None) -> ReadResult:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise FileRejected(name, "not a readable Parquet file", code="unreadable") from exc
    source = table.to_pandas()
    header = [str(c) for c in source.columns]
    records = ((index, [_cell_text(v) for v in values]) for index, values in
               enumerate(source.itertuples(index=False, name=None), start=1))
    frame, skipped = _build_frame(name, header, records, column_map)
    return ReadResult(frame, name, "parquet", skipped_empty_rows=skipped)


def read_table(path: Path, *, column_map: Mapping[str, str] | None = None,
               value_map: Mapping[str, Mapping[str, str]] | None = None,
               dataset: str | None = None, source_name: str | None = None) -> ReadResult:
    """Read a CSV, XLSX or Parquet file as strings.

    Args:
        path: The file.
        column_map: Partner header -> canonical column (exact, or compared as
            `canonical_header`). Unmapped headers become `canonical_header(header)`.
        value_map: `{canonical column: {partner code: canonical code}}` (case-insensitive).
        dataset: The dataset, to choose an XLSX sheet and drop unknown columns; default: the
            file's stem when it names a dataset.
        source_name: Name used in messages (default: `display_name(path)`).

    Returns:
        ReadResult whose frame has canonical columns, `__row` (CSV/XLSX: spreadsheet row
        number, header = 1; Parquet: 1-based record number) and `__read_issue`.

    Raises:
        FileRejected: unreadable, corrupt, empty, unsupported or ambiguous file.
    """
    path = Path(path)
    name = source_name or display_name(path)
    if dataset is None and path.stem.lower() in DATASETS:
        dataset = path.stem.lower()
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        hint = " (save Excel 97-2003 files as XLSX)" if path.suffix.lower() == ".xls" else ""
        raise FileRejected(name, f"unsupported file type '{path.suffix}'{hint}; use CSV, XLSX "
                           "or Parquet", code="unsupported")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileRejected(name, "the file cannot be opened", code="unreadable") from exc
    if size == 0:
        raise FileRejected(name, "the file is empty", code="empty")
    if size > MAX_FILE_BYTES:
        raise FileRejected(name, "the file is larger than 512 MB", code="too_large")
    try:
        if fmt == "csv":
            result = _read_csv(path, name, column_map)
        elif fmt == "xlsx":
            result = _read_xlsx(path, name, dataset, column_map)
        else:
            result = _read_parquet(path, name, column_map)
    except OSError as exc:
        raise FileRejected(name, "the file cannot be read", code="unreadable") from exc
    frame = result.frame
    if dataset is not None:
        known = set(load_contract(dataset).columns)
        dropped = [c for c in frame.columns if c not in known and not c.startswith("__")]
        if dropped:
            frame = frame.drop(columns=dropped)
            result.dropped_columns = dropped
    _apply_value_map(frame, value_map)
    frame.attrs["source_name"] = name
    frame.attrs["dropped_columns"] = list(result.dropped_columns)
    result.frame = frame
    return result


# -- derived columns ----------------------------------------------------------------------
def _date_issue(text: Any, *, as_of: date, not_future: bool, earliest: date | None,
                early_code: str) -> str | None:
    if not isinstance(text, str):
        return None
    parsed = _parse_date(text)
    if parsed is None:
        return "impossible" if _DATE_SHAPE.match(text) else "unparseable"
    if not_future and parsed > as_of:
        return "future"
    if earliest is not None and parsed < earliest:
        return early_code
    return None


def _period_start(period: str | None, as_of: date) -> date:
    """Ages are judged at the start of the drop's period (the extract's month), else as_of."""
    if period and re.fullmatch(r"\d{4}-\d{2}", period):
        start = date(int(period[:4]), int(period[5:]), 1)
        return min(start, as_of)
    return as_of


def _age(text: Any, as_of: date) -> float:
    parsed = _parse_date(text) if isinstance(text, str) else None
    if parsed is None or parsed > as_of:
        return math.nan
    years = as_of.year - parsed.year - ((as_of.month, as_of.day) < (parsed.month, parsed.day))
    return float(years)


def _number(text: Any) -> float:
    if not isinstance(text, str) or not _NUMBER.match(text):
        return math.nan
    try:
        return float(text.replace("$", "").replace(",", ""))
    except ValueError:
        return math.nan


def _duplicates(frame: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.Series:
    out = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    present = frame[keys].notna().all(axis=1)
    subset = frame.loc[present]
    if subset.empty:
        return out
    key_frame = subset[keys].astype(str)
    dup_mask = key_frame.duplicated(keep=False)
    for _, group in subset.loc[dup_mask].groupby(keys, sort=False, dropna=True):
        body = group[columns].astype(str).where(group[columns].notna(), "\x00none")
        if len(body.drop_duplicates()) == 1:
            out.loc[group.index[1:]] = "duplicate_row"
        else:
            out.loc[group.index] = "conflicting_duplicate"
    return out


def _add_derived(frame: pd.DataFrame, contract: Contract, as_of: date,
                 age_reference: date | None = None) -> None:
    age_at = age_reference or as_of
    for derivation in derivations(contract):
        rule, column = derivation.rule, derivation.column
        if derivation.kind == "read_issue":
            if column not in frame.columns:
                frame[column] = None
            continue
        source = frame[rule.column]
        if derivation.kind == "date_issue":
            earliest = rule.params.get("min")
            earliest_date = date.fromisoformat(str(earliest)) if earliest else None
            frame[column] = source.map(lambda v, r=rule, e=earliest_date: _date_issue(
                v, as_of=as_of, not_future=bool(r.params.get("notFuture", False)), earliest=e,
                early_code=str(r.params.get("tooEarlyCode", "too_early")))).astype(object)
        elif derivation.kind == "age":
            ages = source.map(lambda v: _age(v, age_at)).astype(float)
            date_issue = f"__date_issue__{rule.column}"
            if date_issue in frame.columns:  # no age for a date already flagged
                ages = ages.where(frame[date_issue].isna())
            frame[column] = ages
        elif derivation.kind == "ssn_issue":
            frame[column] = source.map(
                lambda v: _ssn_issue(v) if isinstance(v, str) else None).astype(object)
        elif derivation.kind == "number":
            frame[column] = source.map(_number).astype(float)
        elif derivation.kind == "duplicate":
            frame[column] = _duplicates(frame, list(rule.columns), contract.columns)
        elif derivation.kind == "order_issue":
            other = str(rule.params["other"])
            frame[column] = [
                rule.code if (a := _parse_date(x) if isinstance(x, str) else None) and
                (b := _parse_date(y) if isinstance(y, str) else None) and a < b else None
                for x, y in zip(source, frame[other], strict=True)
            ]
            frame[column] = frame[column].astype(object)


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = _cell_text(value)
    value = value.strip().lstrip("\ufeff").strip()
    return value or None


def _canonical_codes(frame: pd.DataFrame, contract: Contract) -> None:
    """Match allowed values case-insensitively (and via synonyms) to the contract's spelling."""
    for rule in contract.rules:
        if rule.rule != "allowedValues":
            continue
        prop = contract.property(rule.column)
        lookup = {str(k).casefold(): str(v) for k, v in prop.synonyms.items()}
        lookup.update({str(v).casefold(): str(v) for v in rule.params["values"]})
        separator = rule.params.get("separator")

        def fix(value: Any, lookup: dict[str, str] = lookup, sep: Any = separator) -> Any:
            if not isinstance(value, str):
                return value
            if sep:
                parts = [p.strip() for p in value.split(str(sep)) if p.strip()]
                return str(sep).join(lookup.get(p.casefold(), p) for p in parts) or None
            return lookup.get(value.casefold(), value)

        frame[rule.column] = frame[rule.column].map(fix)


# -- validation ----------------------------------------------------------------------------
_GX_LOCK = threading.RLock()
_SUITES: dict[tuple[str, tuple[int, int] | None, frozenset[str]], Any] = {}


def _suite(contract: Contract, age_range: tuple[int, int] | None, frame: pd.DataFrame) -> Any:
    """The compiled suite, leaving out checks on columns that are empty in this file.

    A check on an all-empty column passes trivially except `notNull`, which is always kept.
    """
    skip = frozenset(
        check.rule.id for check in checks(contract, age_range=age_range)
        if check.expectation != "ExpectColumnValuesToNotBeNull"
        and frame[check.kwargs["column"]].isna().all()
    )
    key = (suite_name(contract), tuple(age_range) if age_range else None, skip)
    if key not in _SUITES:
        if len(_SUITES) > 256:
            _SUITES.clear()
        _SUITES[key] = compile_suite(contract, age_range=age_range, skip_rule_ids=skip)
    return _SUITES[key]


def run_gx(frame: pd.DataFrame, contract: Contract, age_range: tuple[int, int] | None) -> Any:
    """Validate a prepared frame (contract + derived columns + `__row`) with GE."""
    with _GX_LOCK:
        context = gx_context()
        source = context.data_sources.add_or_update_pandas("pathlink_intake")
        asset_name = contract.name
        try:
            asset = source.get_asset(asset_name)
        except LookupError:
            asset = source.add_dataframe_asset(asset_name)
        try:
            batch_definition = asset.get_batch_definition("whole")
        except (KeyError, LookupError):
            batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        suite = _suite(contract, age_range, frame)
        return batch.validate(suite, result_format=_RESULT_FORMAT)


def _unexpected_rows(result: Mapping[str, Any]) -> list[int]:
    rows: list[int] = []
    for item in result.get("unexpected_index_list") or []:
        value = item.get(ROW) if isinstance(item, Mapping) else item
        if isinstance(value, list | tuple):
            rows.extend(int(v) for v in value)
        elif value is not None:
            rows.append(int(value))
    return rows


_ISSUE_VALUED = {"dateValid", "ssnValid", "unique", "notBefore", "wellFormed"}


def _collect_issues(gx_result: Any, prepared: pd.DataFrame, rules: Mapping[str, Rule]
                    ) -> list[Issue]:
    by_row = prepared.set_index(ROW, drop=False)
    issues: list[Issue] = []
    for result in gx_result.results:
        config = result.expectation_config
        rule = rules[config.meta["rule_id"]]
        if result.exception_info and result.exception_info.get("raised_exception"):
            raise RuntimeError(f"Great Expectations could not evaluate rule {rule.id}")
        if result.success:
            continue
        derived = config.kwargs.get("column")
        for row in _unexpected_rows(result.result):
            code = rule.code
            if rule.rule in _ISSUE_VALUED:
                value = by_row.at[row, derived]
                code = str(value) if isinstance(value, str) else rule.code
            issues.append(Issue(row, rule.column, code, rule.severity, rule.message))
    issues.sort(key=lambda i: i.row)
    return issues


def _empty_like(columns: list[str], with_reasons: bool) -> pd.DataFrame:
    cols = [*columns, ROW] + ([REASONS] if with_reasons else [])
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    frame[ROW] = frame[ROW].astype("int64")
    return frame


def validate_table(frame: pd.DataFrame, dataset: str, *, partner_id: str | None = None,
                   period: str | None = None, as_of: date,
                   age_range: tuple[int, int] | None = None,
                   max_quarantine_share: float = 0.5,
                   source_name: str | None = None) -> ValidationOutcome:
    """Validate a read frame against the dataset's contract.

    Args:
        frame: From `read_table` (or any frame of canonical columns; `__row` is added as
            index + 2 when absent).
        dataset: Contract name.
        partner_id, period: Recorded on the outcome.
        as_of: Reporting date: future dates are judged against it (ages at the start of
            `period` when given).
        age_range: The program's (min, max) age, overriding the contract's default.
        max_quarantine_share: Reject the whole file when more than this share of rows is
            quarantined.
        source_name: File name for messages.

    Returns:
        ValidationOutcome. Never raises for partner data problems (a missing required
        column or too many bad rows give `file_verdict == "rejected"`).
    """
    name = source_name or frame.attrs.get("source_name") or dataset
    try:
        contract = load_contract(dataset)
    except KeyError as exc:
        raise FileRejected(name, f"unknown dataset '{_safe_label(dataset)}'",
                           code="unknown_dataset") from exc
    columns = contract.columns
    work = frame.copy()
    if ROW not in work.columns:
        work[ROW] = range(2, len(work) + 2)
    work = work.reset_index(drop=True)
    work[ROW] = work[ROW].astype("int64")
    dropped = list(frame.attrs.get("dropped_columns", []))
    extra = [c for c in work.columns if c not in columns and not str(c).startswith("__")]
    work = work.drop(columns=extra)
    dropped += extra
    read = len(work)
    issues: list[Issue] = []
    missing = [c for c in contract.required_columns if c not in work.columns]
    for col in dropped if not missing else []:
        issues.append(Issue(0, _safe_label(str(col)), "unknown_column", "warning",
                            "Column is not in the data contract; it was dropped (map it in "
                            "pathlink.toml if it holds a contract field)."))
    if missing:
        for col in missing:
            issues.append(Issue(0, col, "missing_column", "error",
                                f"Required column {col} is missing from the header."))
        reason = "missing required column(s): " + ", ".join(missing)
        if len(missing) == len(contract.required_columns):
            reason += " (is the header row missing or the delimiter unusual?)"
        quarantined = work.reindex(columns=[*columns, ROW]).assign(
            **{REASONS: "file:missing_required_column"})
        return ValidationOutcome(
            dataset, name, _contract_version(dataset), _empty_like(columns, False),
            quarantined, issues, {"read": read, "accepted": 0, "quarantined": read},
            None, "rejected", reason, partner_id, period)

    for col in columns:
        work[col] = work[col].map(_clean).astype(object) if col in work.columns else None
    _canonical_codes(work, contract)
    if READ_ISSUE_COLUMN not in work.columns:
        work[READ_ISSUE_COLUMN] = None
    work[READ_ISSUE_COLUMN] = work[READ_ISSUE_COLUMN].astype(object)
    _add_derived(work, contract, as_of, _period_start(period, as_of))
    prepared = work.astype({c: object for c in columns})

    gx_result = run_gx(prepared, contract, age_range)
    rules = {rule.id: rule for rule in all_rules(contract)}
    row_issues = _collect_issues(gx_result, prepared, rules)
    issues.extend(row_issues)

    errors: dict[int, list[str]] = {}
    warnings: dict[int, set[str]] = {}
    for issue in row_issues:
        if issue.severity == "error":
            reason = f"{issue.field}:{issue.rule}"
            if reason not in errors.setdefault(issue.row, []):
                errors[issue.row].append(reason)
        else:
            warnings.setdefault(issue.row, set()).add(issue.field)
    base = work[[*columns, ROW]]
    bad = base[ROW].isin(list(errors))
    accepted = base.loc[~bad].copy()
    for row, fields in warnings.items():
        mask = accepted[ROW] == row
        for col in fields:
            if col in accepted.columns:
                accepted.loc[mask, col] = None
    quarantined = base.loc[bad].copy()
    quarantined[REASONS] = [";".join(errors[r]) for r in quarantined[ROW]]

    verdict, reason = "accepted", None
    if read == 0:
        issues.insert(0, Issue(0, "", "no_rows", "warning",
                               "The file has a header but no data rows; accepted as "
                               "'nothing to report this period'."))
    elif len(quarantined) / read > max_quarantine_share:
        verdict = "rejected"
        reason = (f"{len(quarantined)} of {read} rows failed validation, more than the "
                  f"{max_quarantine_share:.0%} allowed")
        issues.insert(0, Issue(0, "", "quarantine_share", "error",
                               "Too many rows failed validation; the whole file was held."))
        moved = accepted.assign(**{REASONS: "file:quarantine_share"})
        quarantined = pd.concat([quarantined, moved]).sort_values(ROW)
        accepted = accepted.iloc[0:0]
    accepted = accepted.reset_index(drop=True)
    quarantined = quarantined.reset_index(drop=True)
    counts = {"read": read, "accepted": len(accepted), "quarantined": len(quarantined),
              "rows_with_warnings": len(set(warnings) - set(errors))}
    return ValidationOutcome(dataset, name, _contract_version(dataset), accepted, quarantined,
                             issues, counts, gx_result, verdict, reason, partner_id, period)


def issues_frame(outcome: ValidationOutcome | None) -> pd.DataFrame:
    """Issues as a frame: source_row, field, rule, severity, action, message (no values)."""
    cols = ["source_row", "field", "rule", "severity", "action", "message"]
    if outcome is None or not outcome.issues:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "source_row" else object)
                             for c in cols})
    quarantined_rows = set(outcome.quarantined[ROW]) if len(outcome.quarantined) else set()

    def action(issue: Issue) -> str:
        if issue.row == 0:
            return {"unknown_column": "column_dropped", "no_rows": "reported"}.get(
                issue.rule, "file_rejected")
        if issue.severity == "error" or issue.row in quarantined_rows:
            return "quarantined"
        return "field_dropped"

    return pd.DataFrame(
        [(i.row, i.field, i.rule, i.severity, action(i), i.message) for i in outcome.issues],
        columns=cols,
    ).astype({"source_row": "int64"})


def contract_version(dataset: str) -> str:
    """`"<dataset>@<version>"` of the contract used to validate a dataset."""
    return _contract_version(dataset)


# -- landing paths ---------------------------------------------------------------------------
def parse_drop_path(landing_root: Path, path: Path, *, as_of: date | None = None) -> DropRef:
    """Check a landing path: `<partner_id>/<YYYY-MM>/<dataset>.<csv|xlsx|parquet>`.

    Refuses `..`, symlinks that leave the landing folder, a period folder that is not
    YYYY-MM or lies after `as_of` (default: today), and unknown dataset names.

    Raises:
        FileRejected: with the landing-relative path and the reason.
    """
    landing = Path(landing_root).resolve()
    given = Path(path)
    candidate = given if given.is_absolute() else landing / given
    if ".." in given.parts:
        raise FileRejected(str(given), "path must not contain '..'", code="unsafe_path")
    try:
        rel = candidate.relative_to(landing)
    except ValueError:
        try:
            rel = candidate.relative_to(Path(landing_root))
        except ValueError as exc:
            raise FileRejected(given.name, "file is not inside the landing folder",
                               code="unsafe_path") from exc
    shown = rel.as_posix()
    resolved = (landing / rel).resolve()
    if not resolved.is_relative_to(landing):
        raise FileRejected(shown, "path leaves the landing folder (symlink?)",
                           code="unsafe_path")
    if len(rel.parts) != 3:
        raise FileRejected(shown, "expected <partner_id>/<YYYY-MM>/<dataset>.<csv|xlsx|parquet>",
                           code="bad_layout")
    partner_id, period, filename = rel.parts
    if not PARTNER_RE.match(partner_id):
        raise FileRejected(shown, "partner folder name has unexpected characters",
                           code="bad_partner")
    if not PERIOD_RE.match(period):
        raise FileRejected(shown, "period folder must be YYYY-MM (e.g. 2026-01)",
                           code="bad_period")
    today = as_of or date.today()
    if period > f"{today.year:04d}-{today.month:02d}":
        raise FileRejected(shown, f"period {period} is in the future", code="future_period")
    stem, suffix = Path(filename).stem.lower(), Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise FileRejected(shown, "file type must be .csv, .xlsx or .parquet",
                           code="unsupported")
    if suffix == ".parquet" and (stem == "participants.encoded" or (
            stem.startswith("participants.encoded.")
            and KEY_ID_PATTERN.fullmatch(stem.removeprefix("participants.encoded.")))):
        # participants.encoded.<key id>.parquet: the second file of a key rotation's overlap
        # pair; the hub routes every encoded drop by the fingerprint recorded in it.
        return DropRef(partner_id, period, "participants", resolved, shown, encoded=True)
    if stem not in DATASETS:
        raise FileRejected(shown, "unknown dataset name; expected one of " + ", ".join(DATASETS),
                           code="unknown_dataset")
    return DropRef(partner_id, period, stem, resolved, shown)


# -- check reports and data docs --------------------------------------------------------------
def _partner_setting(config: Any, name: str) -> Any:
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def check_file(path: Path, dataset: str, *, partner_id: str | None = None,
               partner_config: Any = None, as_of: date,
               max_quarantine_share: float = 0.5) -> CheckReport:
    """Read and validate one file for `pathlink check` (never raises for bad data).

    `partner_config` may be a `PartnerConfig`-like object or mapping with `columns`
    (header map), `values` (value map) and `age_range`.
    """
    path = Path(path)
    name = display_name(path)
    try:
        contract = _contract_version(dataset)
    except KeyError:
        return CheckReport(name, dataset, partner_id, "rejected",
                           f"{name}: unknown dataset; expected one of {', '.join(DATASETS)}",
                           {"read": 0, "accepted": 0, "quarantined": 0}, [], "")
    age_range = _partner_setting(partner_config, "age_range")
    try:
        read = read_table(path, column_map=_partner_setting(partner_config, "columns"),
                          value_map=_partner_setting(partner_config, "values"),
                          dataset=dataset, source_name=name)
        outcome = validate_table(read.frame, dataset, partner_id=partner_id, as_of=as_of,
                                 age_range=tuple(age_range) if age_range else None,
                                 max_quarantine_share=max_quarantine_share, source_name=name)
    except FileRejected as exc:
        issue = Issue(exc.row or 0, exc.field or "", exc.code, "error", exc.reason)
        return CheckReport(name, dataset, partner_id, "rejected", str(exc),
                           {"read": 0, "accepted": 0, "quarantined": 0}, [issue], contract)
    return CheckReport(name, dataset, partner_id, outcome.file_verdict,
                       outcome.reject_reason, dict(outcome.counts), outcome.issues, contract,
                       read.file_format, read.encoding, read.delimiter, outcome)


def render_check_report(report: CheckReport, *, max_issues: int = 200) -> str:
    """Plain text for partners: verdict, counts, then one line per issue (no values)."""
    lines = [f"File:      {report.file}", f"Dataset:   {report.dataset}"
             + (f" (contract {report.contract})" if report.contract else "")]
    if report.partner_id:
        lines.append(f"Partner:   {report.partner_id}")
    if report.file_format:
        detail = report.file_format
        if report.encoding:
            detail += f", {report.encoding}"
        if report.delimiter:
            detail += f", delimiter {report.delimiter!r}"
        lines.append(f"Read as:   {detail}")
    verdict = report.verdict.upper()
    lines.append(f"Verdict:   {verdict}" + (f" - {report.reason}" if report.reason else ""))
    counts = report.counts
    lines.append(f"Rows:      read {counts.get('read', 0)}, accepted {counts.get('accepted', 0)}, "
                 f"quarantined {counts.get('quarantined', 0)}, with dropped fields "
                 f"{counts.get('rows_with_warnings', 0)}")
    if report.issues:
        errors = sum(i.severity == "error" for i in report.issues)
        lines.append(f"Issues:    {errors} errors, {len(report.issues) - errors} warnings")
        lines.append("")
        lines.append(f"{'row':>7}  {'severity':8}  {'field':24}  {'rule':24}  message")
        for issue in report.issues[:max_issues]:
            row = "file" if issue.row == 0 else str(issue.row)
            lines.append(f"{row:>7}  {issue.severity:8}  {issue.field:24}  {issue.rule:24}  "
                         f"{issue.message}")
        if len(report.issues) > max_issues:
            lines.append(f"... and {len(report.issues) - max_issues} more issues")
    else:
        lines.append("Issues:    none")
    return "\n".join(lines) + "\n"


def write_data_docs(gx_result: Any, out_dir: Path, *, title: str | None = None) -> Path:
    """Write GE Data Docs HTML (`index.html`) and `summary.md` for one validation.

    The result carries only `__row` ids (validated with `exclude_unexpected_values`), so the
    page shows which rules failed on how many rows, never a value.

    Returns:
        The path of index.html.
    """
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _GX_LOCK:
        gx_context()
        document = ValidationResultsPageRenderer().render(gx_result)
        html = DefaultJinjaPageView().render(document)
    index = out_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    stats = gx_result.statistics or {}
    lines = [f"# {title or 'Validation summary'}", "",
             f"- suite: {gx_result.suite_name}",
             f"- success: {gx_result.success}",
             f"- expectations: {stats.get('evaluated_expectations', 0)} evaluated, "
             f"{stats.get('unsuccessful_expectations', 0)} failed", "",
             "| field | rule | severity | rows |", "|---|---|---|---|"]
    for result in gx_result.results:
        if result.success:
            continue
        meta = result.expectation_config.meta or {}
        rows = (result.result or {}).get("unexpected_count", 0)
        lines.append(f"| {meta.get('field', '')} | {meta.get('code', '')} | "
                     f"{meta.get('severity', '')} | {rows} |")
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return index


__all__ = [
    "CheckReport", "DropRef", "FileRejected", "Issue", "ReadResult", "ValidationOutcome",
    "canonical_header", "check_file", "contract_version", "display_name", "issues_frame",
    "parse_drop_path", "read_table", "render_check_report", "run_gx", "validate_table",
    "write_data_docs",
]
