"""Read a partner file (CSV, XLSX or Parquet) as text, with the partner's column and value maps.

`read_table` gives a DataFrame of strings with a `__row` column (the row number the partner
sees in a spreadsheet) and `__read_issue`. Nothing here puts a data value into a message.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd

from data_contracts import DATASETS, load_contract
from data_contracts.compiler import READ_ISSUE_COLUMN, ROW_COLUMN
from pipelines.ingest.errors import FileRejected, safe_label
from pipelines.ingest.landing import FORMATS, display_name

ROW = ROW_COLUMN
CSV_FIELD_LIMIT = 32 * 1024 * 1024  # a 10 MB field reads; the contract's maxLength flags it

MAX_FILE_BYTES = 512 * 1024 * 1024

DELIMITERS = (",", ";", "|", "\t")

csv.field_size_limit(CSV_FIELD_LIMIT)


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


def canonical_header(text: str) -> str:
    """`' First Name '` -> `first_name`."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).strip().lstrip("\ufeff").lower()).strip("_")


def cell_text(value: Any) -> str:
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
            raise FileRejected(name, f"two columns in the header both map to '{safe_label(col)}'",
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
            rows = [(index, [cell_text(v) for v in values]) for index, values in
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
    records = ((index, [cell_text(v) for v in values]) for index, values in
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
