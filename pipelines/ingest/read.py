"""Read a partner file (CSV, XLSX or Parquet) as text, as partners export it, within limits.

`read_table` gives a DataFrame of strings with a `__row` column (the row number the partner
sees in a spreadsheet) and `__read_issue`. Nothing here puts a data value into a message.

What it takes care of (docs/contracts.md, "Intake decisions"):
- headers matched to contract fields by name, alias or the partner's map, with the header
  row found below title rows (`pipelines.ingest.headers`);
- XLSX: the sheet that holds the header (or the one the partner's config names), date cells
  and Excel serial numbers in date columns as ISO dates, numeric SSN/ZIP cells padded back to
  their width, formulas as their text (never evaluated);
- cell text: non-breaking and zero-width spaces, `="..."` (Excel's keep-as-text trick), and
  the contract's placeholders (`N/A`, `NULL`, ...) read as empty;
- bounded intake (`IntakeLimits`): a file's size, what an XLSX or Parquet expands to, rows,
  columns, field length and sheets are checked before or while streaming (CSV line by line,
  XLSX in openpyxl's read-only mode, Parquet from its metadata then in batches), so a hostile
  file is refused in bounded memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts import DATASETS, Contract, load_contract
from data_contracts.compiler import READ_ISSUE_COLUMN, ROW_COLUMN
from pipelines.ingest.errors import FileRejected, safe_label
from pipelines.ingest.headers import (
    HeaderIndex,
    HeaderMapping,
    find_header_row,
    map_header,
)
from pipelines.ingest.landing import FORMATS, display_name
from pipelines.workspace import IntakeLimits

ROW = ROW_COLUMN
DELIMITERS = (",", ";", "|", "\t")
CHUNK_ROWS = 50_000
SAMPLE_BYTES = 256 * 1024

# Kept for callers that import it: the default limit of the on-disk size.
MAX_FILE_BYTES = IntakeLimits().max_uncompressed_bytes

_SPACES = re.compile("[\u00a0\u2007\u202f\u2000-\u200a\u3000]")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_EXCEL_TEXT = re.compile(r'^="((?:[^"]|"")*)"$')
_APOSTROPHE_DIGITS = re.compile(r"^'(\d[\d\- ]*)$")


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
    header: HeaderMapping | None = None

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def header_row(self) -> int | None:
        return self.header.row if self.header else None


def canonical_header(text: str) -> str:
    """`' First Name '` -> `first_name` (the snake_case spelling of a header)."""
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


def clean_text(text: str, placeholders: frozenset[str] = frozenset()) -> str:
    """A cell's text as meant: odd spaces made plain, trimmed, `="0612"` and `'0612`
    unwrapped, and the contract's placeholders (`N/A`, `NULL`, ...) read as empty."""
    if not text:
        return ""
    # the odd and zero-width spaces are not ASCII: most cells skip those two passes
    text = (text if text.isascii() else _ZERO_WIDTH.sub("", _SPACES.sub(" ", text))).strip()
    if text.startswith('="'):
        match = _EXCEL_TEXT.match(text)
        if match:
            text = match.group(1).replace('""', '"').strip()
    if text.startswith("'"):
        match = _APOSTROPHE_DIGITS.match(text)
        if match:
            text = match.group(1)
    if placeholders and text.casefold() in placeholders:
        return ""
    return text


def _clean_column(values: pd.Series, placeholders: frozenset[str]) -> pd.Series:
    """`clean_text` once per distinct value of a column (empty for missing)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    cleaned = np.empty(len(uniques) + 1, dtype=object)
    for position, value in enumerate(uniques):
        cleaned[position] = clean_text(value if isinstance(value, str) else cell_text(value),
                                       placeholders)
    cleaned[-1] = ""
    return pd.Series(cleaned[codes], index=values.index, dtype=object)


# -- frames ----------------------------------------------------------------------------------
class _FrameBuilder:
    """Collects records under a mapped header, in chunks, counting against the limits."""

    def __init__(self, name: str, mapping: HeaderMapping, limits: IntakeLimits) -> None:
        self.name, self.mapping, self.limits = name, mapping, limits
        self.keep = [m.index for m in mapping.matches if m.field]
        self.columns = [m.field for m in mapping.matches if m.field]
        self.width = len(mapping.matches)
        self.chunks: list[pd.DataFrame] = []
        self.rows: list[int] = []
        self.data: list[list[str]] = []
        self.issues: list[str | None] = []
        self.skipped = 0
        self.count = 0

    def add(self, row_number: int, record: list[str]) -> None:
        if not any(v.strip() for v in record if v):
            self.skipped += 1
            return
        self.count += 1
        if self.count > self.limits.max_rows:
            raise FileRejected(self.name, f"more than {self.limits.max_rows:,} data rows "
                               "([limits] max_rows)", row=row_number, code="too_many_rows")
        issue = None
        if len(record) > self.width:
            if any(str(v).strip() for v in record[self.width:]):
                issue = "malformed_row"
            record = record[:self.width]
        elif len(record) < self.width:
            record = [*record, *([""] * (self.width - len(record)))]
        self.rows.append(row_number)
        self.data.append([record[i] for i in self.keep])
        self.issues.append(issue)
        if len(self.data) >= CHUNK_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.data:
            return
        # column by column: pandas builds an object frame from rows far more slowly
        chunk = pd.DataFrame({column: np.array(values, dtype=object) for column, values in
                              zip(self.columns, zip(*self.data, strict=True), strict=True)},
                             columns=self.columns)
        chunk[ROW] = pd.Series(self.rows, dtype="int64")
        chunk[READ_ISSUE_COLUMN] = pd.Series(self.issues, dtype=object)
        self.chunks.append(chunk)
        self.rows, self.data, self.issues = [], [], []

    def frame(self, placeholders: frozenset[str]) -> pd.DataFrame:
        self._flush()
        if self.chunks:
            frame = pd.concat(self.chunks, ignore_index=True) if len(self.chunks) > 1 \
                else self.chunks[0]
        else:
            frame = pd.DataFrame({col: pd.Series(dtype=object) for col in self.columns})
            frame[ROW] = pd.Series(dtype="int64")
            frame[READ_ISSUE_COLUMN] = pd.Series(dtype=object)
        for column in self.columns:
            frame[column] = _clean_column(frame[column], placeholders)
        return frame.reset_index(drop=True)


def _header_and_records(name: str, rows: list[tuple[int, list[str]]], index: HeaderIndex,
                        *, sheet: str | None = None) -> tuple[HeaderMapping, int]:
    """Find the header row among the first `rows` and map it; returns (mapping, position)."""
    try:
        position = find_header_row(rows, index)
    except ValueError:
        raise FileRejected(name, "the file is empty" if sheet is None else
                           "the sheet is empty", code="empty") from None
    header = list(rows[position][1])
    while header and not str(header[-1]).strip():
        header = header[:-1]
    mapping = map_header(name, header, index, row=rows[position][0], sheet=sheet)
    return mapping, position


# -- CSV -------------------------------------------------------------------------------------
def _sniff_encoding(sample: bytes, name: str) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if sample.count(b"\x00") > max(16, len(sample) // 10):
        raise FileRejected(name, "the file looks binary, not CSV text", code="binary")
    return "utf-8"


def _bounded_lines(handle: io.TextIOBase, cap: int, name: str,
                   counter: list[int]) -> Iterator[str]:
    """Lines of a text stream, none longer than `cap` characters (a longer one refuses the
    file before it is held in memory). `counter[0]` counts the lines handed out."""
    while True:
        line = handle.readline(cap + 1)
        if not line:
            return
        counter[0] += 1
        if len(line) > cap and not line.endswith(("\n", "\r")):
            raise FileRejected(name, f"a line is longer than {cap:,} characters "
                               "([limits] max_field_bytes)", row=counter[0],
                               code="field_too_long")
        yield line


def _detect_layout(text: str, index: HeaderIndex) -> str:
    """The delimiter under which a header row names the most fields; else the one that splits
    the first non-empty line most (ties: , then ; | tab), else csv.Sniffer's guess."""
    lines = [line for line in text.splitlines()[:60] if line.strip()][:30]
    if not lines:
        return ","
    best, best_score = None, 0
    for delimiter in DELIMITERS:
        try:
            records = list(csv.reader(lines, delimiter=delimiter))
        except csv.Error:
            continue
        score = max((index.score(record) for record in records), default=0)
        if score > best_score:
            best, best_score = delimiter, score
    if best is not None and best_score >= 2:
        return best
    first = lines[0]
    counts = {d: len(next(csv.reader([first], delimiter=d), [])) for d in DELIMITERS}
    top = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    if counts[top] > 1:
        return top
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return ","


def _open_no_follow(path: Path) -> io.BufferedReader:
    """Open for reading, refusing a symbolic link at the last component (O_NOFOLLOW)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "rb")


def _read_csv(path: Path, name: str, index: HeaderIndex, limits: IntakeLimits,
              placeholders: frozenset[str]) -> ReadResult:
    with _open_no_follow(path) as raw:
        sample = raw.read(SAMPLE_BYTES)
    if sample.startswith(b"PK\x03\x04"):
        raise FileRejected(name, "this is a spreadsheet (XLSX) saved with a .csv name; "
                           "rename it to .xlsx", code="wrong_format")
    encoding = _sniff_encoding(sample, name)
    candidates = [encoding] if encoding != "utf-8" else ["utf-8", "windows-1252", None]
    last_error: Exception | None = None
    for candidate in candidates:
        if candidate is None:
            from charset_normalizer import from_bytes

            best = from_bytes(sample).best()
            if best is None:
                break
            candidate = str(best.encoding)
        try:
            return _parse_csv(path, name, candidate, index, limits, placeholders)
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
    reason = ("the file starts with a UTF-8 mark but is not UTF-8" if encoding == "utf-8-sig"
              else "the file is not valid UTF-16" if encoding == "utf-16"
              else "cannot tell the text encoding; save as UTF-8 CSV")
    raise FileRejected(name, reason, code="encoding") from last_error


def _parse_csv(path: Path, name: str, encoding: str, index: HeaderIndex,
               limits: IntakeLimits, placeholders: frozenset[str]) -> ReadResult:
    line_cap = max(4 * limits.max_field_bytes, 64 * 1024)
    csv.field_size_limit(limits.max_field_bytes)
    with _open_no_follow(path) as raw:
        handle = io.TextIOWrapper(raw, encoding=encoding, newline="", errors="strict")
        head = handle.read(SAMPLE_BYTES)
        if not head.strip(" \t\r\n\x00\ufeff"):
            raise FileRejected(name, "the file is empty", code="empty")
        delimiter = _detect_layout(head.lstrip("\ufeff"), index)
        handle.seek(0)
        counter = [0]
        reader = csv.reader(_bounded_lines(handle, line_cap, name, counter),
                            delimiter=delimiter)
        record_number = 0
        top: list[tuple[int, list[str]]] = []
        builder: _FrameBuilder | None = None
        mapping: HeaderMapping | None = None
        try:
            for record in reader:
                record_number += 1
                if record_number == 1 and record:
                    record[0] = record[0].lstrip("\ufeff")
                if len(record) > limits.max_columns:
                    raise FileRejected(name, f"row {record_number} has more than "
                                       f"{limits.max_columns:,} columns ([limits] max_columns)",
                                       row=record_number, code="too_many_columns")
                if builder is None:
                    top.append((record_number, record))
                    if sum(1 for _, v in top if any(x.strip() for x in v)) < 20:
                        continue
                    mapping, position = _header_and_records(name, top, index)
                    builder = _FrameBuilder(name, mapping, limits)
                    for number, values in top[position + 1:]:
                        builder.add(number, values)
                    top = []
                    continue
                builder.add(record_number, record)
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise FileRejected(name, f"a field is longer than "
                                   f"{limits.max_field_bytes:,} bytes ([limits] "
                                   "max_field_bytes)", row=record_number + 1,
                                   code="field_too_long") from None
            raise FileRejected(name, "the CSV cannot be parsed (unbalanced quotes?)",
                               row=record_number + 1, code="broken_csv") from None
        if builder is None:
            if not any(any(x.strip() for x in v) for _, v in top):
                raise FileRejected(name, "the file is empty", code="empty")
            mapping, position = _header_and_records(name, top, index)
            builder = _FrameBuilder(name, mapping, limits)
            for number, values in top[position + 1:]:
                builder.add(number, values)
    assert mapping is not None
    return ReadResult(builder.frame(placeholders), name, "csv", encoding=encoding,
                      delimiter=delimiter, skipped_empty_rows=builder.skipped, header=mapping)


# -- XLSX ------------------------------------------------------------------------------------
def _check_workbook_archive(path: Path, name: str, limits: IntakeLimits) -> None:
    """Refuse a workbook from its zip directory alone: what it expands to, its sheet count and
    its shared-strings part (held in memory whole by openpyxl)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise FileRejected(name, "not a readable XLSX workbook (corrupt or another format)",
                           code="unreadable") from exc
    expanded = sum(info.file_size for info in infos)
    if expanded > limits.max_uncompressed_bytes:
        raise FileRejected(name, f"the workbook expands to {expanded / 2**20:,.0f} MB, more "
                           f"than the {limits.max_uncompressed_bytes / 2**20:,.0f} MB allowed "
                           "([limits] max_uncompressed_bytes)", code="too_large")
    sheets = [i for i in infos if re.fullmatch(r"xl/worksheets/[^/]+\.xml", i.filename)]
    if len(sheets) > limits.max_sheets:
        raise FileRejected(name, f"the workbook has {len(sheets)} sheets, more than the "
                           f"{limits.max_sheets} allowed ([limits] max_sheets)",
                           code="too_many_sheets")
    strings = sum(i.file_size for i in infos if i.filename.endswith("sharedStrings.xml"))
    if strings > max(limits.max_uncompressed_bytes // 8, 1):
        raise FileRejected(name, f"the workbook's shared strings expand to "
                           f"{strings / 2**20:,.0f} MB, more than the "
                           f"{limits.max_uncompressed_bytes / 8 / 2**20:,.0f} MB allowed "
                           "(an eighth of [limits] max_uncompressed_bytes)", code="too_large")


def _xlsx_converters(mapping: HeaderMapping, contract: Contract | None,
                     epoch: datetime) -> dict[int, Callable[[Any], str]]:
    """Per column position: how a cell becomes text (dates, serials, padded numeric codes)."""
    from openpyxl.utils.datetime import from_excel

    out: dict[int, Callable[[Any], str]] = {}
    if contract is None:
        return out
    for match in mapping.matches:
        if match.field is None:
            continue
        prop = contract.property(match.field)
        if prop.logical_type == "date":
            def to_date(value: Any) -> str:
                if isinstance(value, int | float) and not isinstance(value, bool) \
                        and 1 <= value < 2958466:
                    return cell_text(from_excel(value, epoch))
                return cell_text(value)
            out[match.index] = to_date
        elif prop.numeric_width:
            width = prop.numeric_width

            def padded(value: Any, width: int = width) -> str:
                if isinstance(value, int | float) and not isinstance(value, bool) \
                        and float(value).is_integer() and value >= 0:
                    return str(int(value)).zfill(width)
                return cell_text(value)
            out[match.index] = padded
    return out


def _sheet_rows(sheet: Any, limit: int | None = None) -> Iterator[tuple[int, tuple]]:
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        if limit is not None and number > limit:
            return
        yield number, values


def _read_xlsx(path: Path, name: str, index: HeaderIndex, dataset: str | None,
               sheet_name: str | None, limits: IntakeLimits,
               placeholders: frozenset[str]) -> ReadResult:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    _check_workbook_archive(path, name, limits)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError,
            TypeError, EOFError) as exc:
        raise FileRejected(name, "not a readable XLSX workbook (corrupt or another format)",
                           code="unreadable") from exc
    try:
        candidates = []  # (title, top rows, mapping-or-None, score)
        for sheet in workbook.worksheets:
            if hasattr(sheet, "reset_dimensions"):
                sheet.reset_dimensions()  # never pad rows to a claimed (hostile) dimension
            top = [(n, [cell_text(v) for v in values[:limits.max_columns + 1]])
                   for n, values in _sheet_rows(sheet, 60)]
            if not any(any(v.strip() for v in values) for _, values in top):
                continue
            position = find_header_row(top, index)
            candidates.append((sheet.title, top, position, index.score(top[position][1])))
        if not candidates:
            raise FileRejected(name, "the workbook is empty", code="empty")
        chosen = _choose_sheet(name, candidates, index, dataset, sheet_name)
        title = chosen[0]
        sheet = workbook[title]
        rows_top = chosen[1]
        mapping, position = _header_and_records(name, rows_top, index, sheet=title)
        if len(mapping.matches) > limits.max_columns:
            raise FileRejected(name, f"the header has more than {limits.max_columns:,} "
                               "columns ([limits] max_columns)", row=mapping.row,
                               code="too_many_columns")
        converters = _xlsx_converters(mapping, index.contract, workbook.epoch)
        builder = _FrameBuilder(name, mapping, limits)
        for number, values in _sheet_rows(sheet):
            if number <= mapping.row:
                continue
            if len(values) > limits.max_columns:
                if any(v not in (None, "") for v in values[limits.max_columns:]):
                    raise FileRejected(name, f"row {number} has more than "
                                       f"{limits.max_columns:,} columns ([limits] "
                                       "max_columns)", row=number, code="too_many_columns")
                values = values[:limits.max_columns]
            record = []
            for position_, value in enumerate(values):
                convert = converters.get(position_)
                text = convert(value) if convert else cell_text(value)
                if len(text) > limits.max_field_bytes:
                    raise FileRejected(name, f"a cell is longer than "
                                       f"{limits.max_field_bytes:,} characters ([limits] "
                                       "max_field_bytes)", row=number, code="field_too_long")
                record.append(text)
            builder.add(number, record)
    finally:
        workbook.close()
    return ReadResult(builder.frame(placeholders), name, "xlsx", sheet=title,
                      skipped_empty_rows=builder.skipped, header=mapping)


def _choose_sheet(name: str, candidates: list[tuple[str, list, int, int]], index: HeaderIndex,
                  dataset: str | None, sheet_name: str | None) -> tuple[str, list, int, int]:
    """The sheet the partner's config names; else the one named like the dataset; else the
    one whose header holds the required columns (or the only sheet with data)."""
    if sheet_name:
        for candidate in candidates:
            if candidate[0].strip().casefold() == sheet_name.strip().casefold():
                return candidate
        raise FileRejected(name, f"the sheet '{safe_label(sheet_name)}' named in pathlink.toml "
                           "is not in the workbook (or is empty)", code="multiple_sheets")
    named = [c for c in candidates if dataset and canonical_header(c[0]) == dataset]
    if named:
        return named[0]
    if len(candidates) == 1:
        return candidates[0]
    required = set(index.contract.required_columns) if index.contract else set()
    holding = []
    for candidate in candidates:
        header = candidate[1][candidate[2]][1]
        fields = {hit[0] for cell in header if (hit := index.match(cell)) is not None}
        if required and required <= fields:
            holding.append(candidate)
    if len(holding) == 1:
        return holding[0]
    if len(holding) > 1:
        raise FileRejected(name, f"{len(holding)} of the workbook's {len(candidates)} sheets "
                           "hold the required columns; keep one, name the data sheet "
                           f"'{dataset or 'the dataset'}', or set sheet = \"...\" for the "
                           "partner in pathlink.toml", code="multiple_sheets")
    raise FileRejected(name, f"the workbook has {len(candidates)} sheets with data and none "
                       "holds the required columns; keep one sheet or name the data sheet "
                       f"'{dataset or 'the dataset'}'", code="multiple_sheets")


# -- Parquet ---------------------------------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ValueError("varint too long")


def _page_header_sizes(buf: bytes) -> tuple[int, int] | None:
    """(uncompressed, compressed) page size from the first three fields of a Thrift-compact
    Parquet PageHeader (type, uncompressed_page_size, compressed_page_size: each an i32 field
    one after the other), or None when the bytes are not laid out so."""
    pos, values = 0, []
    try:
        for _ in range(3):
            if buf[pos] != 0x15:  # field delta 1, type i32
                return None
            raw, pos = _varint(buf, pos + 1)
            values.append((raw >> 1) ^ -(raw & 1))
    except (IndexError, ValueError):
        return None
    return values[1], values[2]


def _check_dictionary_pages(path: Path, name: str, meta: Any, limits: IntakeLimits) -> None:
    """Refuse a dictionary page that would expand past a sixteenth of
    `max_uncompressed_bytes` (32 MiB at the default) before Arrow decodes it whole: a writer's
    dictionary page is about 1 MB, and a tiny file can hold one huge value every row uses."""
    cap = max(limits.max_uncompressed_bytes // 16, 1024 * 1024)
    with _open_no_follow(path) as handle:
        for i in range(meta.num_row_groups):
            for j in range(meta.num_columns):
                chunk = meta.row_group(i).column(j)
                if not chunk.has_dictionary_page or chunk.dictionary_page_offset is None:
                    continue
                handle.seek(chunk.dictionary_page_offset)
                sizes = _page_header_sizes(handle.read(64))
                if sizes is not None and sizes[0] > cap:
                    raise FileRejected(name, f"a dictionary page expands to "
                                       f"{sizes[0] / 2**20:,.0f} MB, more than the "
                                       f"{cap / 2**20:,.0f} MB allowed (a sixteenth of "
                                       "[limits] max_uncompressed_bytes)", code="too_large")


def _read_parquet(path: Path, name: str, index: HeaderIndex, limits: IntakeLimits,
                  placeholders: frozenset[str]) -> ReadResult:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        meta = parquet.metadata
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise FileRejected(name, "not a readable Parquet file", code="unreadable") from exc
    if meta.num_columns > limits.max_columns:
        raise FileRejected(name, f"the file has {meta.num_columns:,} columns, more than the "
                           f"{limits.max_columns:,} allowed ([limits] max_columns)",
                           code="too_many_columns")
    if meta.num_rows > limits.max_rows:
        raise FileRejected(name, f"the file has {meta.num_rows:,} rows, more than the "
                           f"{limits.max_rows:,} allowed ([limits] max_rows)",
                           code="too_many_rows")
    expanded = sum(meta.row_group(i).column(j).total_uncompressed_size
                   for i in range(meta.num_row_groups) for j in range(meta.num_columns))
    if expanded > limits.max_uncompressed_bytes:
        raise FileRejected(name, f"the file expands to {expanded / 2**20:,.0f} MB, more than "
                           f"the {limits.max_uncompressed_bytes / 2**20:,.0f} MB allowed "
                           "([limits] max_uncompressed_bytes)", code="too_large")
    _check_dictionary_pages(path, name, meta, limits)
    header = [str(c) for c in parquet.schema_arrow.names]
    mapping = map_header(name, header, index)
    builder = _FrameBuilder(name, mapping, limits)
    text_columns = [f.name for f in parquet.schema_arrow
                    if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                    or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    converters = _xlsx_converters(mapping, index.contract, datetime(1899, 12, 30))
    # small batches, dictionaries kept until their values are measured: a tiny file whose
    # dictionary holds one huge value referenced by every row is refused, not expanded
    number, held = 0, 0
    try:
        reopened = pq.ParquetFile(path, read_dictionary=text_columns)
        for batch in reopened.iter_batches(batch_size=1024):
            for column in batch.columns:
                values = column.dictionary if pa.types.is_dictionary(column.type) else column
                if pa.types.is_string(values.type) or pa.types.is_binary(values.type) or \
                        pa.types.is_large_string(values.type) or \
                        pa.types.is_large_binary(values.type):
                    longest = pc.max(pc.binary_length(values)).as_py() if len(values) else 0
                    if longest and longest > limits.max_field_bytes:
                        raise FileRejected(name, f"a value is longer than "
                                           f"{limits.max_field_bytes:,} bytes ([limits] "
                                           "max_field_bytes)", row=number + 1,
                                           code="field_too_long")
            held += batch.nbytes
            if held > limits.max_uncompressed_bytes:
                raise FileRejected(name, "the file expands to more than the "
                                   f"{limits.max_uncompressed_bytes / 2**20:,.0f} MB allowed "
                                   "([limits] max_uncompressed_bytes)", code="too_large")
            columns = [c.to_pylist() for c in batch.columns]
            for values in zip(*columns, strict=True) if columns else ():
                number += 1
                builder.add(number, [converters.get(i, cell_text)(v)
                                     for i, v in enumerate(values)])
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise FileRejected(name, "not a readable Parquet file", code="unreadable") from exc
    return ReadResult(builder.frame(placeholders), name, "parquet",
                      skipped_empty_rows=builder.skipped, header=mapping)


# -- entry point -----------------------------------------------------------------------------
def _apply_value_map(frame: pd.DataFrame, value_map: Mapping[str, Mapping[str, str]] | None
                     ) -> None:
    for column, mapping in (value_map or {}).items():
        if column not in frame.columns or not mapping:
            continue
        lookup = {str(k).strip().casefold(): str(v) for k, v in mapping.items()}
        frame[column] = frame[column].map(
            lambda v, lk=lookup: lk.get(v.strip().casefold(), v) if isinstance(v, str) else v)


def read_table(path: Path, *, column_map: Mapping[str, str] | None = None,
               value_map: Mapping[str, Mapping[str, str]] | None = None,
               dataset: str | None = None, source_name: str | None = None,
               sheet: str | None = None, limits: IntakeLimits | None = None) -> ReadResult:
    """Read a CSV, XLSX or Parquet file as strings.

    Args:
        path: The file.
        column_map: The partner's header -> contract field map (compared like every header:
            case-, space- and punctuation-insensitively); it wins over names and aliases.
        value_map: `{canonical column: {partner code: canonical code}}` (case-insensitive).
        dataset: The dataset, to match headers and choose an XLSX sheet; default: the file's
            stem when it names a dataset.
        source_name: Name used in messages (default: `display_name(path)`).
        sheet: The XLSX sheet to read (the partner's `sheet` setting).
        limits: What the file may hold (default: `IntakeLimits()`).

    Returns:
        ReadResult whose frame has canonical columns, `__row` (CSV/XLSX: spreadsheet row
        number, counting title rows above the header; Parquet: 1-based record number) and
        `__read_issue`; `header` says how each column was placed.

    Raises:
        FileRejected: unreadable, corrupt, empty, unsupported, over a limit, or ambiguous.
    """
    path = Path(path)
    name = source_name or display_name(path)
    limits = limits or IntakeLimits()
    if dataset is None and path.stem.lower() in DATASETS:
        dataset = path.stem.lower()
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        hint = " (save Excel 97-2003 files as XLSX)" if path.suffix.lower() == ".xls" else ""
        raise FileRejected(name, f"unsupported file type '{path.suffix}'{hint}; use CSV, XLSX "
                           "or Parquet", code="unsupported")
    if path.is_symlink():
        raise FileRejected(name, "the file is a symbolic link; copy the file itself",
                           code="unsafe_path")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileRejected(name, "the file cannot be opened", code="unreadable") from exc
    if size == 0:
        raise FileRejected(name, "the file is empty", code="empty")
    if size > limits.max_uncompressed_bytes:
        raise FileRejected(name, f"the file is larger than "
                           f"{limits.max_uncompressed_bytes / 2**20:,.0f} MB ([limits] "
                           "max_uncompressed_bytes)", code="too_large")
    contract = load_contract(dataset) if dataset is not None else None
    placeholders = contract.placeholders if contract is not None else frozenset()
    index = HeaderIndex(contract, column_map)
    try:
        if fmt == "csv":
            result = _read_csv(path, name, index, limits, placeholders)
        elif fmt == "xlsx":
            result = _read_xlsx(path, name, index, dataset, sheet, limits, placeholders)
        else:
            result = _read_parquet(path, name, index, limits, placeholders)
    except OSError as exc:
        raise FileRejected(name, "the file cannot be read", code="unreadable") from exc
    frame = result.frame
    if result.header is not None:
        result.dropped_columns = [m.label if result.header.looks_like_header else
                                  f"column {m.index + 1}" for m in result.header.unplaced]
    _apply_value_map(frame, value_map)
    frame.attrs["source_name"] = name
    frame.attrs["dropped_columns"] = list(result.dropped_columns)
    result.frame = frame
    return result


__all__ = ["ReadResult", "canonical_header", "cell_text", "clean_text", "read_table"]

