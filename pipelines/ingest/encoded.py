"""Partner-side encoding: turn a raw extract into an encoded drop, and read one at the hub.

A partner runs ``pathlink encode`` on its own machine. The raw file is read, validated against
the data contract, normalized and encoded there, and only the encoded Parquet leaves the
partner. That file holds ``partner_record_id``, ``source_row``, ``tok_*``, ``bf_*``,
``birth_year``, ``sex`` and ``zip3``, and no other column. Quarantined rows are not written.
Its Parquet key-value metadata records the encoding schema id, the key fingerprint, the
partner and the row counts.

The hub calls ``read_encoded_drop`` with its key's fingerprint (and, during a key rotation's
overlap, the previous keys' fingerprints) and its encoding schema. A file made under another
key, under another schema, or with an unexpected column, type or filter length is refused. The
hub never needs the secret to read a drop.

Messages name files, columns, rules and counts, never a data value. See docs/encoding.md.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from keys import KeyMismatchError
from linkage.encode import EncodingSchema, SecretLike, encode_participants, load_encoding_schema
from linkage.normalize import SUFFIXES, normalize_participants
from pipelines.ingest.batch import EncodedBatch
from pipelines.ingest.check import CheckReport
from pipelines.ingest.landing import PARTNER_RE, PERIOD_RE, display_name
from pipelines.ingest.read import ROW, read_table
from pipelines.ingest.validate import validate_table

#: Landing file name of an encoded drop at the hub.
ENCODED_DROP_NAME = "participants.encoded.parquet"


def encoded_drop_name(key_id: str | None = None) -> str:
    """Landing name of an encoded drop: ``participants.encoded.parquet``, or with a key id
    ``participants.encoded.<key_id>.parquet`` (the second file of a key rotation's overlap
    pair; the hub routes either by the fingerprint recorded in the file, not by its name)."""
    return ENCODED_DROP_NAME if key_id is None else f"participants.encoded.{key_id}.parquet"

META_SCHEMA = "pathlink_encoding_schema"
META_FINGERPRINT = "pathlink_key_fingerprint"
META_PARTNER = "pathlink_partner"
META_PERIOD = "pathlink_period"
META_CONTRACT = "pathlink_contract"
META_READ = "pathlink_rows_read"
META_ACCEPTED = "pathlink_rows_accepted"
META_QUARANTINED = "pathlink_rows_quarantined"
META_CREATED = "created_at"

LINEAGE_COLUMNS = ("partner_record_id", "source_row")
_TOKEN_RE = re.compile(r"^[0-9a-f]{64}$")
_ZIP3_RE = re.compile(r"^[0-9]{3}$")
_SEXES = frozenset({"F", "M", "X"})
_SUFFIXES = SUFFIXES


class EncodedDropError(ValueError):
    """An encoded drop cannot be used. The message names the file, never a data value."""


@dataclass
class EncodedDrop:
    """A partner's encoded extract, ready for ``write_encoded``.

    ``encoded`` holds only the columns listed in the module docstring, one row per accepted
    record; ``report`` is the validation summary (rows, fields and rules, never values).
    """

    partner_id: str
    period: str | None
    encoded: pd.DataFrame
    key_fingerprint: str
    encoding_schema: str
    contract: str
    counts: dict[str, int]
    report: CheckReport
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(
        timespec="seconds"))

    @property
    def accepted(self) -> bool:
        """Whether the file passed validation (a rejected file must not be written)."""
        return self.report.verdict == "accepted"


def encoded_columns(schema: EncodingSchema) -> list[str]:
    """The columns of an encoded drop under ``schema``, in file order."""
    return [*LINEAGE_COLUMNS, *schema.columns()]


def _arrow_schema(schema: EncodingSchema) -> pa.Schema:
    fields = [pa.field("partner_record_id", pa.string(), nullable=False),
              pa.field("source_row", pa.int64(), nullable=False)]
    fields += [pa.field(f"tok_{t}", pa.string()) for t in schema.tokens]
    fields += [pa.field(f"ts_{t}", pa.binary()) for t in schema.token_sets]
    fields += [pa.field(f"bf_{b}", pa.binary()) for b in schema.bloom]
    types = {"birth_year": pa.int64(), "sex": pa.string(), "zip3": pa.string(),
             "suffix": pa.string()}
    fields += [pa.field(name, types[name]) for name in schema.passthrough]
    return pa.schema(fields)


def encode_file(
    path: Path | str,
    *,
    partner_id: str,
    secret: SecretLike,
    period: str | None = None,
    as_of: date,
    dataset: str = "participants",
    schema: EncodingSchema | None = None,
    partner_config: Any = None,
) -> EncodedDrop:
    """Read, validate, normalize and encode one partner file (runs on the partner's machine).

    `partner_config` (a `PartnerConfig`, e.g. from `pathlink encode --map FILE`) gives the
    partner's header and value maps, sheet and age range, read exactly as the hub reads them.

    Args:
        path: CSV, XLSX or Parquet extract (canonical participant columns).
        partner_id: The partner's id (recorded in the file's metadata).
        secret: The shared secret (``keys.SharedSecret``).
        period: Optional ``YYYY-MM`` the extract reports on (ages are judged at its start).
        as_of: Reporting date (normally today).
        dataset: Only ``participants`` can be encoded.
        schema: Encoding schema; default the current one (``schemas/encoding/v2.json``).

    Returns:
        The encoded drop. When validation rejects the whole file, ``drop.accepted`` is False
        and ``drop.encoded`` is empty.

    Raises:
        pipelines.ingest.FileRejected: the file cannot be read at all.
        ValueError: bad partner id, period or dataset.
    """
    if not PARTNER_RE.match(partner_id):
        raise ValueError("partner id must match " + PARTNER_RE.pattern)
    if period is not None and not PERIOD_RE.match(period):
        raise ValueError("period must be YYYY-MM")
    if dataset != "participants":
        raise ValueError("only the participants dataset can be encoded")
    schema = schema or load_encoding_schema()
    path = Path(path)
    name = display_name(path)
    columns = getattr(partner_config, "columns", None)
    values = getattr(partner_config, "values", None)
    age_range = getattr(partner_config, "age_range", None)
    read = read_table(path, dataset=dataset, source_name=name, column_map=columns,
                      value_map=values, sheet=getattr(partner_config, "sheet", None))
    outcome = validate_table(read.frame, dataset, partner_id=partner_id, period=period,
                             as_of=as_of, source_name=name, age_range=age_range)
    report = CheckReport(
        name, dataset, partner_id, outcome.file_verdict, outcome.reject_reason,
        dict(outcome.counts), outcome.issues, outcome.contract, read.file_format,
        read.encoding, read.delimiter, outcome, header=read.header, sheet=read.sheet,
    )
    accepted = outcome.accepted if outcome.file_verdict == "accepted" else outcome.accepted.iloc[:0]
    normalized = normalize_participants(accepted, as_of=as_of)
    encoded = encode_participants(normalized, secret, schema)
    encoded.insert(0, "partner_record_id", accepted["partner_record_id"].astype(str).to_numpy())
    encoded.insert(1, "source_row", accepted[ROW].astype("int64").to_numpy())
    encoded = encoded[encoded_columns(schema)].reset_index(drop=True)
    return EncodedDrop(
        partner_id=partner_id, period=period, encoded=encoded,
        key_fingerprint=secret.fingerprint, encoding_schema=schema.id,
        contract=outcome.contract,
        counts={k: int(outcome.counts.get(k, 0)) for k in ("read", "accepted", "quarantined")},
        report=report,
    )


def _metadata(drop: EncodedDrop) -> dict[bytes, bytes]:
    meta = {
        META_SCHEMA: drop.encoding_schema,
        META_FINGERPRINT: drop.key_fingerprint,
        META_PARTNER: drop.partner_id,
        META_CONTRACT: drop.contract,
        META_READ: str(drop.counts["read"]),
        META_ACCEPTED: str(drop.counts["accepted"]),
        META_QUARANTINED: str(drop.counts["quarantined"]),
        META_CREATED: drop.created_at,
    }
    if drop.period:
        meta[META_PERIOD] = drop.period
    return {k.encode(): v.encode() for k, v in meta.items()}


def write_encoded(drop: EncodedDrop, out: Path | str, *, overwrite: bool = False) -> Path:
    """Write ``drop`` as Parquet (mode 0600, atomically) with its metadata.

    Raises:
        EncodedDropError: the drop was rejected by validation, or ``out`` exists and
            ``overwrite`` is False.
    """
    out = Path(out)
    if not drop.accepted:
        raise EncodedDropError(f"{drop.report.file}: the file was rejected by validation; "
                               "nothing to write")
    if out.exists() and not overwrite:
        raise EncodedDropError(f"{out}: already exists (pass overwrite to replace it)")
    version = int(drop.encoding_schema.rsplit("/", 1)[1])
    schema = load_encoding_schema(version)
    arrow_schema = _arrow_schema(schema).with_metadata(_metadata(drop))
    frame = drop.encoded
    columns = {}
    for f in arrow_schema:
        values = frame[f.name]
        if f.name == "birth_year":
            values = [None if pd.isna(v) else int(v) for v in values]
        else:
            values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v
                      for v in values]
        columns[f.name] = pa.array(values, type=f.type)
    table = pa.Table.from_pydict(columns, schema=arrow_schema)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".encoding-", suffix=".parquet", dir=out.parent)
    try:
        os.close(fd)
        os.chmod(tmp, 0o600)
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


# --------------------------------------------------------------------------- hub side


def _fail(name: str, reason: str) -> EncodedDropError:
    return EncodedDropError(f"encoded drop {name}: {reason}; not linked")


def _check_strings(name: str, column: str, values: pd.Series, pattern: re.Pattern[str],
                   rule: str) -> None:
    present = values.dropna()
    bad = ~present.map(lambda v: isinstance(v, str) and bool(pattern.match(v)))
    if bad.any():
        raise _fail(name, f"column {column}: {int(bad.sum())} value(s) are not {rule}")


def read_encoded_drop(
    path: Path | str,
    *,
    expected_fingerprint: str | SecretLike,
    expected_schema: EncodingSchema | str,
    expected_partner: str | None = None,
    previous_fingerprints: Collection[str] = (),
) -> EncodedBatch:
    """Read an encoded drop at the hub, refusing anything made under another key or schema.

    Args:
        path: The encoded Parquet (landing name ``participants.encoded.parquet``).
        expected_fingerprint: The hub key's fingerprint (or the ``SharedSecret`` itself: only
            its ``fingerprint`` is used).
        expected_schema: The hub's ``EncodingSchema`` (or its id, e.g.
            ``"pathlink-encoding/3"``).
        expected_partner: When given, the partner recorded in the file must be this one.
        previous_fingerprints: Fingerprints of previous keys still accepted during a key
            rotation's overlap (docs/keys.md, "Rotation"); the batch's ``key_fingerprint`` tells
            which key made the file.

    Returns:
        An :class:`EncodedBatch`: the encoded frame (``partner_record_id``, ``source_row``,
        ``tok_*`` as str or None, ``bf_*`` as bytes or None, ``birth_year`` Int64, ``sex``,
        ``zip3``) with the file's ``key_fingerprint``, ``encoding_schema``, ``partner_id``,
        ``period``, ``rows_read`` / ``rows_accepted`` / ``rows_quarantined`` and
        ``created_at``.

    Raises:
        keys.KeyMismatchError: the file's key fingerprint is missing, or neither the hub's
            current key's nor a previous key's still in its overlap.
        EncodedDropError: unreadable file, other schema or partner, unexpected or missing
            column, wrong type, malformed token, wrong filter length, inconsistent counts.
    """
    path = Path(path)
    name = display_name(path)
    if isinstance(expected_schema, str):
        match = re.fullmatch(r"pathlink-encoding/([0-9]+)", expected_schema)
        if not match:
            raise ValueError("expected_schema must be an EncodingSchema or a schema id")
        expected_schema = load_encoding_schema(int(match.group(1)))
    hub_fp = str(getattr(expected_fingerprint, "fingerprint", expected_fingerprint)).lower()
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise _fail(name, "not a readable Parquet file") from exc
    meta = {k.decode(errors="replace"): v.decode(errors="replace")
            for k, v in (parquet.schema_arrow.metadata or {}).items()}

    file_fp = meta.get(META_FINGERPRINT, "").strip().lower()
    if not file_fp:
        raise KeyMismatchError(f"encoded drop {name} carries no key fingerprint; cannot tell "
                               f"which key encoded it (this hub's key is {hub_fp}); see "
                               "docs/keys.md")
    previous = sorted({str(fp).lower() for fp in previous_fingerprints} - {hub_fp})
    if file_fp != hub_fp and file_fp not in previous:
        also = (f" (previous key{'s' if len(previous) > 1 else ''} still accepted: "
                f"{', '.join(previous)})" if previous else "")
        raise KeyMismatchError(
            f"encoded drop {name} was encoded under key fingerprint {file_fp} but this hub's "
            f"key is {hub_fp}{also}; ask the partner to re-encode with the shared key, or "
            "rotate (see docs/keys.md)"
        )
    file_schema = meta.get(META_SCHEMA, "")
    if file_schema != expected_schema.id:
        raise _fail(name, f"encoded with schema {file_schema or '(none recorded)'!r} but this "
                          f"hub expects {expected_schema.id!r}")
    partner = meta.get(META_PARTNER, "")
    if not PARTNER_RE.match(partner):
        raise _fail(name, "no valid partner id in the file's metadata")
    if expected_partner is not None and partner != expected_partner:
        raise _fail(name, f"made by partner {partner!r}, expected {expected_partner!r}")
    counts = {}
    for key in (META_READ, META_ACCEPTED, META_QUARANTINED):
        text = meta.get(key, "")
        if not text.isdigit():
            raise _fail(name, f"metadata {key} is missing or not a count")
        counts[key] = int(text)

    expected_cols = encoded_columns(expected_schema)
    arrow_schema = _arrow_schema(expected_schema)
    actual = parquet.schema_arrow
    extra = [c for c in actual.names if c not in expected_cols]
    missing = [c for c in expected_cols if c not in actual.names]
    if extra:
        raise _fail(name, f"unexpected column(s) {extra} (an encoded drop holds only "
                          f"{expected_cols})")
    if missing:
        raise _fail(name, f"missing column(s) {missing}")
    for f in arrow_schema:
        got = actual.field(f.name).type
        compatible = got == f.type or (
            (pa.types.is_integer(f.type) and pa.types.is_integer(got))
            or (pa.types.is_string(f.type) and pa.types.is_large_string(got))
            or (pa.types.is_binary(f.type) and pa.types.is_large_binary(got))
        )
        if not compatible:
            raise _fail(name, f"column {f.name} has type {got}, expected {f.type}")

    table = parquet.read(columns=expected_cols)
    n_rows = table.num_rows
    if counts[META_ACCEPTED] != n_rows or counts[META_READ] != (
            counts[META_ACCEPTED] + counts[META_QUARANTINED]):
        raise _fail(name, f"row counts in the metadata do not add up ({n_rows} rows in the file)")
    data: dict[str, Any] = {}
    for column in expected_cols:
        chunked = table.column(column)
        if column.startswith(("bf_", "ts_")):
            width = (expected_schema.encoded_bits(column[3:]) // 8 if column.startswith("bf_")
                     else expected_schema.token_set_bytes(column[3:]))
            lengths = pc.binary_length(chunked).to_numpy(zero_copy_only=False)
            present = ~np.isnan(lengths.astype(float))
            wrong = int((lengths[present] != width).sum())
            if wrong:
                raise _fail(name, f"column {column}: {wrong} value(s) are not {width} bytes")
            data[column] = np.array(chunked.to_pylist(), dtype=object)
        elif column in ("source_row", "birth_year"):
            data[column] = pd.array(chunked.to_pylist(), dtype="Int64")
        else:
            data[column] = np.array(chunked.to_pylist(), dtype=object)
    frame = pd.DataFrame(data, columns=expected_cols)

    ids = frame["partner_record_id"]
    if ids.isna().any() or ids.duplicated().any():
        raise _fail(name, "partner_record_id must be present and unique")
    if frame["source_row"].isna().any():
        raise _fail(name, "source_row must be present")
    frame["source_row"] = frame["source_row"].astype("int64")
    for column in expected_cols:
        if column.startswith("tok_"):
            _check_strings(name, column, frame[column], _TOKEN_RE, "64 lowercase hex digits")
    if "zip3" in frame:
        _check_strings(name, "zip3", frame["zip3"], _ZIP3_RE, "3 digits")
    if "sex" in frame:
        bad = frame["sex"].dropna().map(lambda v: v not in _SEXES)
        if bad.any():
            raise _fail(name, f"column sex: {int(bad.sum())} value(s) are not F, M or X")
    if "suffix" in frame:
        bad = frame["suffix"].dropna().map(lambda v: v not in _SUFFIXES)
        if bad.any():
            raise _fail(name, f"column suffix: {int(bad.sum())} value(s) are not one of "
                              f"{', '.join(sorted(_SUFFIXES))}")
    if "birth_year" in frame:
        years = frame["birth_year"].dropna()
        if ((years < 1850) | (years > 2100)).any():
            raise _fail(name, "column birth_year: value(s) outside 1850-2100")
    return EncodedBatch(
        frame, key_fingerprint=file_fp, encoding_schema=file_schema,
        rows_read=counts[META_READ], rows_accepted=counts[META_ACCEPTED],
        rows_quarantined=counts[META_QUARANTINED], partner_id=partner,
        period=meta.get(META_PERIOD) or None, created_at=meta.get(META_CREATED))
