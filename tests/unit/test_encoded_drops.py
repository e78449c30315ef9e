"""Partner-side encoding (pipelines.ingest.encoded, ``pathlink encode``) and the hub-side reader."""

from __future__ import annotations

import base64
import copy
import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from keys import KeyMismatchError, SharedSecret
from linkage.encode import EncodingSchema, load_encoding_schema
from pipelines.cli import app
from pipelines.ingest import encoded as encoded_drops
from pipelines.ingest.encoded import EncodedDropError, encode_file, read_encoded_drop, write_encoded
from schemas import load_schema

KEY_A = SharedSecret("hub-2026a", b"\x11" * 32)
KEY_B = SharedSecret("hub-2027a", b"\x22" * 32)
AS_OF = date(2026, 11, 22)

HEADER = ("partner_record_id,first_name,middle_name,last_name,suffix,date_of_birth,ssn,sex,"
          "street_address,city,state,zip,phone,email")
ROWS = [
    "R-001,Zyxwvutsrq,Canarymiddle,Qrstuvwxyzz,,1987-03-14,512-34-7891,F,"
    "987 Zyxwvut St,Hartford,CT,06103,860-987-1234,canary.zyxw@example.org",
    "R-002,Maria,,Garcia-Lopez,,05/06/2001,,F,12 Main St,Hartford,CT,06105,,",
    "R-003,John,,Smith,Jr,19990102,,M,,,,06106,,",
    ",,,Nofirstname,,2000-01-01,,M,,,,,,",  # quarantined: no partner_record_id
]
CANARIES = ["Zyxwvutsrq", "Qrstuvwxyzz", "Canarymiddle", "1987-03-14", "03/14/1987", "19870314",
            "512-34-7891", "512347891", "Zyxwvut", "8609871234", "860-987-1234",
            "canary.zyxw", "Nofirstname"]


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    path = tmp_path / "my_extract.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return path


@pytest.fixture(scope="module")
def encoded_once(tmp_path_factory) -> tuple[encoded_drops.EncodedDrop, Path]:
    """The extract encoded and written once (validation is the slow part); tests get copies."""
    extract = tmp_path_factory.mktemp("extract") / "my_extract.csv"
    extract.write_text("\n".join([HEADER, *ROWS]) + "\n")
    drop = encode_file(extract, partner_id="youth_dept", secret=KEY_A, period="2026-10",
                       as_of=AS_OF)
    out = write_encoded(drop, tmp_path_factory.mktemp("encoded") / "participants.encoded.parquet")
    return drop, out


@pytest.fixture
def written(encoded_once, tmp_path: Path) -> tuple[encoded_drops.EncodedDrop, Path]:
    """A fresh copy of the encoded file for each test (some rewrite it)."""
    drop, original = encoded_once
    out = tmp_path / "out" / "participants.encoded.parquet"
    out.parent.mkdir()
    shutil.copy2(original, out)
    return drop, out


def _assert_no_canary(blob: bytes) -> None:
    for needle in CANARIES:
        for variant in {needle, needle.lower(), needle.upper()}:
            assert variant.encode() not in blob, needle


def test_encoded_file_holds_no_pii_and_records_key_and_schema(written) -> None:
    drop, out = written
    assert drop.accepted and drop.counts == {"read": 4, "accepted": 3, "quarantined": 1}
    _assert_no_canary(out.read_bytes())
    table = pq.read_table(out)
    _assert_no_canary(repr(table.to_pydict()).encode())
    _assert_no_canary(repr(table.to_pandas().to_dict()).encode())
    schema = load_encoding_schema()
    assert table.column_names == encoded_drops.encoded_columns(schema)
    assert "bf_full_name" in table.column_names
    assert table.column("partner_record_id").to_pylist() == ["R-001", "R-002", "R-003"]
    assert table.column("source_row").to_pylist() == [2, 3, 4]
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta["pathlink_key_fingerprint"] == KEY_A.fingerprint
    assert meta["pathlink_encoding_schema"] == "pathlink-encoding/3"
    assert meta["pathlink_partner"] == "youth_dept"
    assert (meta["pathlink_rows_read"], meta["pathlink_rows_accepted"],
            meta["pathlink_rows_quarantined"]) == ("4", "3", "1")
    assert meta["created_at"]
    _assert_no_canary(repr(meta).encode())
    assert out.stat().st_mode & 0o077 == 0


def test_hub_reads_what_the_partner_wrote(written) -> None:
    drop, out = written
    batch = read_encoded_drop(out, expected_fingerprint=KEY_A.fingerprint,
                              expected_schema=load_encoding_schema(),
                              expected_partner="youth_dept")
    frame = batch.frame
    assert batch.partner_id == "youth_dept"
    assert batch.rows_quarantined == 1
    for column in drop.encoded.columns:
        if column.startswith(("tok_", "bf_")):
            assert frame[column].tolist() == drop.encoded[column].tolist(), column
    assert frame["birth_year"].tolist() == [1987, 2001, 1999]
    # a SharedSecret works too (only its fingerprint is read), and a schema id
    again = read_encoded_drop(out, expected_fingerprint=KEY_A,
                              expected_schema="pathlink-encoding/3")
    assert len(again.frame) == 3


def test_hub_under_another_key_refuses_the_file(written) -> None:
    _, out = written
    with pytest.raises(KeyMismatchError, match=r"participants\.encoded\.parquet") as info:
        read_encoded_drop(out, expected_fingerprint=KEY_B.fingerprint,
                          expected_schema=load_encoding_schema())
    assert KEY_A.fingerprint in str(info.value) and KEY_B.fingerprint in str(info.value)


def _rewrite(out: Path, mutate) -> None:
    table = pq.read_table(out)
    meta = dict(table.schema.metadata)
    table, meta = mutate(table, meta)
    pq.write_table(table.replace_schema_metadata(meta), out)


def test_missing_fingerprint_refused(written) -> None:
    _, out = written
    _rewrite(out, lambda t, m: (t, {k: v for k, v in m.items()
                                    if k != b"pathlink_key_fingerprint"}))
    with pytest.raises(KeyMismatchError, match="no key fingerprint"):
        read_encoded_drop(out, expected_fingerprint=KEY_A.fingerprint,
                          expected_schema=load_encoding_schema())


def test_wrong_schema_refused(written) -> None:
    _, out = written
    # a drop encoded under the current schema at a hub still on v1 (or the reverse) is refused
    spec = copy.deepcopy(load_schema("encoding", 1))
    with pytest.raises(EncodedDropError, match=r"schema 'pathlink-encoding/3'.*expects"):
        read_encoded_drop(out, expected_fingerprint=KEY_A.fingerprint,
                          expected_schema=EncodingSchema.from_dict(spec))


def test_tampered_filter_length_refused(written) -> None:
    _, out = written

    def truncate(table: pa.Table, meta: dict) -> tuple[pa.Table, dict]:
        values = table.column("bf_given_name").to_pylist()
        values[1] = values[1][:-1]
        i = table.column_names.index("bf_given_name")
        return table.set_column(i, "bf_given_name", pa.array(values, pa.binary())), meta

    _rewrite(out, truncate)
    with pytest.raises(EncodedDropError, match="bf_given_name: 1 value"):
        read_encoded_drop(out, expected_fingerprint=KEY_A.fingerprint,
                          expected_schema=load_encoding_schema())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t, m: (t.append_column("first_name", pa.array(["x"] * len(t))), m),
         "unexpected column"),
        (lambda t, m: (t.drop_columns(["tok_t4_ssn"]), m), "missing column"),
        (lambda t, m: (t.set_column(t.column_names.index("tok_t6_swapped"), "tok_t6_swapped",
                                    pa.array(["NOT-HEX"] * len(t))), m), "64 lowercase hex"),
        (lambda t, m: (t, {**m, b"pathlink_rows_accepted": b"7"}), "row counts"),
        (lambda t, m: (t, {**m, b"pathlink_partner": b"acme"}), "expected 'youth_dept'"),
    ],
)
def test_malformed_drops_refused(written, mutate, message) -> None:
    _, out = written
    _rewrite(out, mutate)
    with pytest.raises(EncodedDropError, match=message):
        read_encoded_drop(out, expected_fingerprint=KEY_A.fingerprint,
                          expected_schema=load_encoding_schema(), expected_partner="youth_dept")


def test_rejected_file_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("partner_record_id,first_name\nR1,Ann\n")  # required columns missing
    drop = encode_file(path, partner_id="youth_dept", secret=KEY_A, as_of=AS_OF)
    assert not drop.accepted and len(drop.encoded) == 0
    with pytest.raises(EncodedDropError, match="rejected"):
        write_encoded(drop, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def _env() -> dict[str, str]:
    material = base64.urlsafe_b64encode(b"\x11" * 32).decode()
    return {"PATHLINK_SECRET_HUB_2026A": material}


def test_cli_encode(extract: Path, tmp_path: Path) -> None:
    out = tmp_path / "participants.encoded.parquet"
    runner = CliRunner()
    result = runner.invoke(app, ["encode", str(extract), "--partner", "youth_dept", "-o", str(out),
                                 "--key-id", "hub-2026a", "--period", "2026-10"], env=_env())
    assert result.exit_code == 0, result.output
    assert "partner_record_id" in result.output and "quarantined 1" in result.output
    assert KEY_A.fingerprint in result.output
    _assert_no_canary(result.output.encode())
    batch = read_encoded_drop(out, expected_fingerprint=KEY_A.fingerprint,
                              expected_schema=load_encoding_schema())
    assert batch.period == "2026-10" and len(batch.frame) == 3
    again = runner.invoke(app, ["encode", str(extract), "--partner", "youth_dept", "-o",
                                str(out), "--key-id", "hub-2026a"], env=_env())
    assert again.exit_code == 2 and "already exists" in again.output


def test_cli_encode_key_dir_and_failures(extract: Path, tmp_path: Path) -> None:
    from keys import write_secret_file

    key_dir = tmp_path / "secrets"
    write_secret_file(key_dir / "hub-2027a.key", b"\x22" * 32, key_id="hub-2027a")
    out = tmp_path / "b.parquet"
    runner = CliRunner()
    ok = runner.invoke(app, ["encode", str(extract), "--partner", "youth_dept", "-o", str(out),
                             "--key-id", "hub-2027a", "--key-dir", str(key_dir)])
    assert ok.exit_code == 0, ok.output
    assert pq.read_schema(out).metadata[b"pathlink_key_fingerprint"] == KEY_B.fingerprint.encode()
    missing = runner.invoke(app, ["encode", str(extract), "--partner", "youth_dept", "-o",
                                  str(tmp_path / "c.parquet"), "--key-id", "nope-1"], env={})
    assert missing.exit_code == 2 and "PATHLINK_SECRET_NOPE_1" in missing.output
    bad = tmp_path / "bad.csv"
    bad.write_text("partner_record_id,first_name\nR1,Ann\n")
    rejected = runner.invoke(app, ["encode", str(bad), "--partner", "youth_dept", "-o",
                                   str(tmp_path / "d.parquet"), "--key-id", "hub-2026a"],
                             env=_env())
    assert rejected.exit_code == 1 and "REJECTED" in rejected.output
    assert not (tmp_path / "d.parquet").exists()
