"""Hostile drops for bounded intake (issue 16), and the figures of reading each one.

Builders (also used by tests/unit/test_bounded_intake.py):
- `xlsx_bomb`: a real workbook of ~0.5-2.5 MB whose one sheet expands to about 1 GB of XML
  (the deflate stream of one 1 MB block of rows is repeated, so it is built in seconds); also
  with a zip directory that claims 1 MB, so the refusal must come from the streaming read;
- `parquet_bomb`: ~40 KB of Parquet holding 20 million rows of one dictionary-encoded string;
- `parquet_huge_value`: a few KB of Parquet whose dictionary holds one 64 MB value every row
  references;
- `csv_huge_field`: a CSV with one 31 MB field;
- `csv_wide_header`: a CSV whose header has 200,000 columns.

`python benchmarks/intake_bombs.py` builds each in a temporary folder and, in a fresh
subprocess per file, reads it with `pipelines.ingest.read_table` under the default
`[limits]`, printing the outcome, the peak memory above the process's baseline (VmHWM after
the imports, reset through /proc/self/clear_refs where the kernel allows) and the time.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

MB = 1024 * 1024

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
    'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
    'worksheet+xml"/></Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://'
         'schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type'
         '="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"'
         ' Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://'
             'schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.'
             'openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name='
             '"participants" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WORKBOOK_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships '
                  'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                  '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                  'officeDocument/2006/relationships/worksheet" Target="worksheets/'
                  'sheet1.xml"/></Relationships>')


def _zip(path: Path, entries: list[tuple[str, bytes, int, int, int]]) -> None:
    """Write a zip of (name, stored bytes, method, crc, uncompressed size) entries."""
    out = bytearray()
    central = bytearray()
    for name, data, method, crc, size in entries:
        encoded = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc,
                           len(data), size, len(encoded), 0) + encoded + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21,
                               crc, len(data), size, len(encoded), 0, 0, 0, 0, 0,
                               offset) + encoded
    start = len(out)
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                                 len(central), start, 0)
    path.write_bytes(bytes(out))


def _stored(name: str, text: str) -> tuple[str, bytes, int, int, int]:
    data = text.encode()
    return name, data, 0, zlib.crc32(data), len(data)


def xlsx_bomb(path: Path, expanded_mb: int = 960, declared_mb: int | None = None) -> Path:
    """A valid workbook whose sheet expands to about `expanded_mb` MB of rows of cells; with
    `declared_mb` its zip directory claims the sheet expands to that much only (a lie)."""
    header = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://'
              b'schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
              b'<row r="1"><c r="A1" t="inlineStr"><is><t>partner_record_id</t></is></c></row>'
              )
    block = ("<row>" + '<c t="inlineStr"><is><t>' + "A" * 1000 + "</t></is></c>" + "</row>"
             ).encode() * (MB // 1040)
    footer = b"</sheetData></worksheet>"
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    one = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    # after a full flush the compressor starts afresh: the same input gives the same bytes
    assert compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH) == one
    tail = compressor.compress(footer) + compressor.flush()
    crc = zlib.crc32(header)
    for _ in range(expanded_mb):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(footer, crc)
    size = len(header) + expanded_mb * len(block) + len(footer)
    if declared_mb is not None:
        size = declared_mb * MB
    sheet = ("xl/worksheets/sheet1.xml", head + one * expanded_mb + tail, 8, crc, size)
    _zip(path, [_stored("[Content_Types].xml", _CONTENT_TYPES), _stored("_rels/.rels", _RELS),
                _stored("xl/workbook.xml", _WORKBOOK),
                _stored("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS), sheet])
    return path


def parquet_bomb(path: Path, rows: int = 20_000_000) -> Path:
    """Tiny Parquet: `rows` rows of one 100-character string, dictionary and RLE encoded."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)),
                                            pa.array(["Q" * 100]))
    table = pa.table({"partner_record_id": column, "first_name": column})
    pq.write_table(table, path, compression="zstd", use_dictionary=True)
    return path


def parquet_huge_value(path: Path, value_mb: int = 64, rows: int = 1000) -> Path:
    """Parquet whose dictionary holds one `value_mb` MB string that every row references."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)),
                                            pa.array(["Z" * (value_mb * MB)]))
    pq.write_table(pa.table({"partner_record_id": column}), path, compression="zstd",
                   use_dictionary=True)
    return path


def csv_huge_field(path: Path, field_mb: int = 31) -> Path:
    """A participants CSV whose second row holds one `field_mb` MB name."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write("partner_record_id,first_name,last_name,date_of_birth\n")
        handle.write("R1,")
        chunk = "A" * MB
        for _ in range(field_mb):
            handle.write(chunk)
        handle.write(",Lee,1990-01-01\n")
    return path


def csv_wide_header(path: Path, columns: int = 200_000) -> Path:
    """A CSV whose header has `columns` columns."""
    path.write_text(",".join(f"c{i}" for i in range(columns)) + "\n" + "1\n")
    return path


BOMBS = {
    "xlsx bomb (~1 GB of XML)": ("participants.xlsx", xlsx_bomb),
    "xlsx bomb declaring 1 MB": ("participants.xlsx",
                                 lambda path: xlsx_bomb(path, declared_mb=1)),
    "parquet bomb (20M rows)": ("participants.parquet", parquet_bomb),
    "parquet dictionary value of 64 MB": ("participants.parquet", parquet_huge_value),
    "csv field of 31 MB": ("participants.csv", csv_huge_field),
    "csv header of 200,000 columns": ("participants.csv", csv_wide_header),
}

PROBE = r"""
import json, sys, time
from pathlib import Path

def status(field):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0

import openpyxl, pyarrow.parquet, charset_normalizer  # the readers' imports, before the baseline
from pipelines.ingest.errors import FileRejected
from pipelines.ingest.read import read_table
try:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current RSS
except OSError:
    pass
baseline = status("VmRSS:")
started = time.perf_counter()
try:
    result = read_table(Path(sys.argv[1]))
    outcome, reason = "read", f"{result.rows} rows"
except FileRejected as exc:
    outcome, reason = exc.code, exc.reason
seconds = time.perf_counter() - started
print(json.dumps({"outcome": outcome, "reason": reason, "seconds": seconds,
                  "peak_above_baseline_mb": (status("VmHWM:") - baseline) / 2**20,
                  "baseline_mb": baseline / 2**20}))
"""


def probe(path: Path, timeout: float = 120) -> dict:
    """Read `path` in a fresh Python process; the outcome, seconds and peak memory."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"probe failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - started
    return result


def main() -> int:
    import os

    print(f"load average: {os.getloadavg()}")
    print(f"{'file':36} {'size':>10} {'outcome':18} {'peak MB':>8} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (name, build) in BOMBS.items():
            folder = Path(tmp) / label.split()[0] / str(abs(hash(label)))
            folder.mkdir(parents=True)
            path = build(folder / name)
            result = probe(path)
            print(f"{label:36} {path.stat().st_size:>10,} {result['outcome']:18} "
                  f"{result['peak_above_baseline_mb']:>8.1f} {result['seconds']:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
