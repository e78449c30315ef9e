"""Bounded intake (issue 16): hostile drops are refused with a clear message, in bounded memory
and time, under the default `[limits]`.

Each file is read in a fresh subprocess (`benchmarks/intake_bombs.probe`) that reports its peak
memory above its own baseline (VmHWM after the imports) and the time `read_table` took. Bounds
are the issue's: under 300 MB and within 10 s (the refusals measured here take well under a
second and a few MB; the benchmark prints the figures).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import intake_bombs

from pipelines import ingest
from pipelines.ingest.errors import FileRejected
from pipelines.workspace import IntakeLimits

PEAK_MB = 300
SECONDS = 10


@pytest.mark.slow  # subprocesses and a 1 GB (expanded) workbook: left out of make test-fast
@pytest.mark.parametrize(("label", "code"), [
    ("xlsx bomb (~1 GB of XML)", "too_large"),
    ("parquet bomb (20M rows)", "too_many_rows"),
    ("parquet dictionary value of 64 MB", "too_large"),
    ("csv field of 31 MB", "field_too_long"),
    ("csv header of 200,000 columns", "too_many_columns"),
])
def test_hostile_drop_is_refused_in_bounded_memory_and_time(tmp_path: Path, label: str,
                                                           code: str) -> None:
    name, build = intake_bombs.BOMBS[label]
    path = build(tmp_path / name)
    result = intake_bombs.probe(path)
    assert result["outcome"] == code, result
    assert result["peak_above_baseline_mb"] < PEAK_MB, result
    assert result["seconds"] < SECONDS, result
    assert "[limits]" in result["reason"]  # the message names the setting to change


@pytest.mark.slow
def test_an_xlsx_bomb_whose_zip_directory_lies_is_refused_while_streaming(tmp_path: Path
                                                                          ) -> None:
    """The directory claims the sheet expands to 1 MB (under every limit), so the size check
    passes; the streaming read stops at the claimed size and the CRC no longer matches."""
    name, build = intake_bombs.BOMBS["xlsx bomb declaring 1 MB"]
    result = intake_bombs.probe(build(tmp_path / name))
    assert result["outcome"] == "unreadable", result
    assert "not a readable XLSX workbook" in result["reason"]
    assert result["peak_above_baseline_mb"] < PEAK_MB, result
    assert result["seconds"] < SECONDS, result


def test_limits_come_from_the_config_and_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "participants.csv"
    path.write_text("partner_record_id,first_name,last_name,date_of_birth\n"
                    + "".join(f"R{i},Ann,Lee,1990-01-01\n" for i in range(30)))
    with pytest.raises(FileRejected) as info:
        ingest.read_table(path, limits=IntakeLimits(max_rows=20))
    assert info.value.code == "too_many_rows" and "max_rows" in info.value.reason
    with pytest.raises(FileRejected) as info:
        ingest.read_table(path, limits=IntakeLimits(max_uncompressed_bytes=100))
    assert info.value.code == "too_large"
    with pytest.raises(FileRejected) as info:
        ingest.read_table(path, limits=IntakeLimits(max_columns=3))
    assert info.value.code == "too_many_columns"
    assert ingest.read_table(path, limits=IntakeLimits(max_rows=30)).rows == 30


def test_sheet_limit(tmp_path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    for i in range(4):
        workbook.create_sheet(f"S{i}")
    path = tmp_path / "participants.xlsx"
    workbook.save(path)
    with pytest.raises(FileRejected) as info:
        ingest.read_table(path, limits=IntakeLimits(max_sheets=3))
    assert info.value.code == "too_many_sheets"


def test_limits_config_is_validated(tmp_path: Path) -> None:
    from pipelines.workspace import WorkspaceError

    assert IntakeLimits.from_config({"max_rows": 5}, "x").max_rows == 5
    for bad in ({"max_rowz": 5}, {"max_rows": 0}, {"max_rows": "5"}):
        with pytest.raises(WorkspaceError):
            IntakeLimits.from_config(bad, "pathlink.toml")
