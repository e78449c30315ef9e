"""Key rotation: bridge records encoded under the old and the new key in the overlap period.

Tokens and filters made under different keys never match, so a rotation links nothing by
comparison. Instead, in the overlap period every partner encodes the same full extract twice,
once under each key (docs/keys.md, "Rotation"). The two encodings of one partner record carry
the same ``(partner_id, partner_record_id)``, which pairs them. ``bridge_overlap`` returns that
pairing; ``carry_over_persons`` then gives each new-key record the person its old-key twin
already has. Pure functions: DataFrames in, DataFrames out, no keys needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

_NEEDED = ("record_key", "partner_id", "partner_record_id")


@dataclass(frozen=True)
class RotationBridge:
    """The pairing of one overlap period's old-key and new-key encodings.

    Attributes:
        mapping: ``old_record_key``, ``new_record_key``, ``partner_id``, ``partner_record_id``;
            one row per partner record present under both keys.
        old_only: record keys encoded only under the old key (they will not carry over).
        new_only: record keys encoded only under the new key (new records: link as usual).
    """

    mapping: pd.DataFrame
    old_only: tuple[str, ...]
    new_only: tuple[str, ...]

    def as_dict(self) -> dict[str, str]:
        """``{old_record_key: new_record_key}``."""
        return dict(zip(self.mapping["old_record_key"], self.mapping["new_record_key"],
                        strict=True))


def _fingerprint(frame: pd.DataFrame) -> str | None:
    if "key_fingerprint" in frame.columns:
        values = frame["key_fingerprint"].dropna().unique()
        if len(values) > 1:
            raise ValueError("an overlap encoding must come from one key; found "
                             f"{len(values)} key fingerprints")
        return str(values[0]) if len(values) else None
    return frame.attrs.get("key_fingerprint")


def _side(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    missing = [c for c in _NEEDED if c not in frame.columns]
    if missing:
        raise ValueError(f"{label} encoding lacks column(s) {missing}")
    side = frame[list(_NEEDED)].astype({"partner_id": str, "partner_record_id": str})
    if side["record_key"].duplicated().any():
        raise ValueError(f"{label} encoding has duplicate record_key values")
    if side.duplicated(["partner_id", "partner_record_id"]).any():
        raise ValueError(f"{label} encoding has a partner record more than once")
    return side


def bridge_overlap(old: pd.DataFrame, new: pd.DataFrame) -> RotationBridge:
    """Pair the old-key and new-key encodings of the overlap period by partner record.

    Args:
        old: Overlap-period records encoded under the old key (``record_key``, ``partner_id``,
            ``partner_record_id``; ``key_fingerprint`` column or attr when known).
        new: The same period's records encoded under the new key.

    Returns:
        A ``RotationBridge``; ``mapping`` is sorted by ``old_record_key``.

    Raises:
        ValueError: a missing column, a duplicate record, or both sides under the same key
            fingerprint (that is not a rotation).
    """
    old_fp, new_fp = _fingerprint(old), _fingerprint(new)
    if old_fp is not None and old_fp == new_fp:
        raise ValueError(f"both encodings were made under key fingerprint {old_fp}; a rotation "
                         "bridge needs the old and the new key")
    old_side, new_side = _side(old, "old"), _side(new, "new")
    merged = old_side.merge(new_side, on=["partner_id", "partner_record_id"], how="outer",
                            suffixes=("_old", "_new"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    mapping = pd.DataFrame({
        "old_record_key": both["record_key_old"].astype(str).to_numpy(),
        "new_record_key": both["record_key_new"].astype(str).to_numpy(),
        "partner_id": both["partner_id"].to_numpy(),
        "partner_record_id": both["partner_record_id"].to_numpy(),
    }).sort_values("old_record_key", ignore_index=True)
    old_only = merged.loc[merged["_merge"] == "left_only", "record_key_old"]
    new_only = merged.loc[merged["_merge"] == "right_only", "record_key_new"]
    return RotationBridge(mapping, tuple(sorted(map(str, old_only))),
                          tuple(sorted(map(str, new_only))))


def carry_over_persons(bridge: RotationBridge, crosswalk: pd.DataFrame) -> pd.DataFrame:
    """Give each bridged new-key record the person of its old-key twin.

    Args:
        bridge: From ``bridge_overlap``.
        crosswalk: ``record_key``, ``person_id`` of the old-key records (after linking the
            old-key overlap batch as usual).

    Returns:
        ``record_key`` (new), ``person_id``: one row per bridged record whose old twin has a
        person. Person ids are random and key-independent, so they carry over unchanged.
    """
    persons = crosswalk[["record_key", "person_id"]].rename(
        columns={"record_key": "old_record_key"})
    carried = bridge.mapping.merge(persons, on="old_record_key", how="inner")
    return carried.rename(columns={"new_record_key": "record_key"})[
        ["record_key", "person_id"]].reset_index(drop=True)
