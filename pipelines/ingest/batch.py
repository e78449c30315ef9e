"""Encoded participant records on their way to the restricted state.

An `EncodedBatch` carries the encoded frame together with what it was encoded under (the key
fingerprint and the encoding schema) and the file's row counts, so nothing rides on
`DataFrame.attrs` (which pandas documents as experimental and many operations drop).
`with_lineage` stamps both kinds of drop, raw files encoded at the hub and files encoded by
the partner, with the same lineage columns in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from pipelines.records import PROFILE_COLUMNS


@dataclass(frozen=True)
class EncodedBatch:
    """Encoded records (tokens, Bloom filters, pass-through fields; never raw PII) and their
    provenance.

    Attributes:
        frame: One row per accepted record.
        key_fingerprint: Fingerprint of the key the tokens and filters were made under.
        encoding_schema: Encoding schema id, e.g. ``pathlink-encoding/3``.
        rows_read, rows_accepted, rows_quarantined: The file's row counts.
        partner_id, period, created_at: As recorded in a partner-side encoded file.
    """

    frame: pd.DataFrame
    key_fingerprint: str | None
    encoding_schema: str | None
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    partner_id: str | None = None
    period: str | None = None
    created_at: str | None = None

    def with_lineage(self, *, partner_id: str, period: str, sha256: str,
                     profile: pd.DataFrame | None = None) -> EncodedBatch:
        """The batch with lineage, profile, key and schema columns, ready for the state.

        Columns: ``record_key, partner_id, partner_record_id, period, file_sha256,
        source_row``, the encoded columns, the profile columns (from `profile`, else empty)
        and ``key_fingerprint, encoding_schema``. The frame must hold ``partner_record_id``
        and ``source_row``.
        """
        encoded = self.frame.reset_index(drop=True)
        record_ids = encoded.pop("partner_record_id").astype(str).to_numpy()
        source_rows = encoded.pop("source_row").astype("int64").to_numpy()
        encoded.insert(0, "record_key", partner_id + ":" + pd.Series(record_ids, dtype=object))
        encoded.insert(1, "partner_id", partner_id)
        encoded.insert(2, "partner_record_id", record_ids)
        encoded.insert(3, "period", period)
        encoded.insert(4, "file_sha256", sha256)
        encoded.insert(5, "source_row", source_rows)
        for column in PROFILE_COLUMNS:  # reporting attributes (sensitive, not identifying)
            encoded[column] = (profile[column].to_numpy()
                               if profile is not None and column in profile.columns else None)
        encoded["key_fingerprint"] = self.key_fingerprint
        encoded["encoding_schema"] = self.encoding_schema
        return replace(self, frame=encoded)


def encoded_batch(encoded: pd.DataFrame, accepted: pd.DataFrame, *, key_fingerprint: str,
                  encoding_schema: str) -> EncodedBatch:
    """A batch from `linkage.encode.encode_participants` output and the accepted rows it was
    made from (their ``partner_record_id`` and ``__row``)."""
    frame = encoded.reset_index(drop=True)
    frame.insert(0, "partner_record_id", accepted["partner_record_id"].astype(str).to_numpy())
    frame.insert(1, "source_row", accepted["__row"].astype("int64").to_numpy())
    return EncodedBatch(frame, key_fingerprint, encoding_schema, rows_read=len(frame),
                        rows_accepted=len(frame))


__all__ = ["EncodedBatch", "encoded_batch"]
