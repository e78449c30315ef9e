"""Cluster records into persons from ``match`` pairs, guarding against chaining.

Plain connected components over match pairs chain: A~B and B~C put A and C together even when
A and C carry different SSNs. Instead, match pairs are merged greedily in descending
``match_weight`` (Kruskal order, union-find), and a merge is refused when the merged cluster
would hold

* two different non-null SSN tokens (``clustering.ssn_token_column``): never, checked over
  every pair of the merged cluster's members (a cluster holds at most one SSN); or
* birth years more than ``clustering.max_birth_year_gap`` apart, unless the pair's weight
  reaches ``fellegi_sunter.overwhelming_weight``. A birth-year conflict that the merging pair
  shows by itself (its own two records carry the whole spread) is refused only when
  ``clustering.direct_pair_guards`` lists ``"birth_year"``; otherwise it is left to the
  Fellegi-Sunter weight, which already counted that disagreement, and the guard stops only
  conflicts that arise through chaining (A and C joined via a B with no DOB). DOB typos,
  day/month swaps and one-year slips are therefore judged by the pair weight, and a cluster
  never drifts across birth years through intermediate records. An SSN conflict is refused
  whether the pair shows it or a chain does (``"ssn"`` in ``direct_pair_guards`` is implied).
  Within-partner duplicates merge like any other pair.

Clerical-review decisions enter as constraints on record keys (``must_link`` and
``cannot_link`` pairs, docs/review.md):

* a **must-link** merges its two records before any scored pair, whatever the guards say (a
  person decided it); the merged cluster then carries both records' SSN tokens and birth years,
  so later automatic merges are judged against both;
* a **cannot-link** is never crossed: a merge (by a scored pair, a chain, or a must-link) that
  would put its two records in one cluster is refused, however heavy the pair. A must-link that
  contradicts cannot-links is refused too (``constraint_conflicts`` finds such decisions before
  they are stored).

``cluster_reason`` per record's cluster (first rule that applies):
``review:cannot_link`` (a merge into or out of this cluster was refused by a cannot-link),
``split:ssn_conflict`` / ``split:dob_conflict`` (a merge into or out of this cluster was
refused), ``review:must_link`` (a must-link merged it), ``singleton``,
``override:weight>=<w>`` (a conflict was overridden by an overwhelming weight), ``ssn_token``
(every merge had agreeing SSN tokens), ``fs_weight>=<threshold>``.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from linkage.spec import LinkSpec

__all__ = ["cluster_records", "constraint_conflicts", "greedy_clusters"]

_REFUSED_SSN = 1
_REFUSED_DOB = 2
_OVERRIDE = 4
_REVIEW_SPLIT = 8
_REVIEW_MERGE = 16


@numba.njit(cache=True)
def _find(parent: np.ndarray, x: int) -> int:  # pragma: no cover - jitted
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@numba.njit(cache=True)
def _union(parent, size, flags, merges, ssn_merges, root_ssn, year_lo, year_hi, root_has_year,
           root_cl, ra, rb, ssn_agree):  # pragma: no cover - jitted
    """Merge root ``rb`` into ``ra`` (or the other way round, by size); returns the new root."""
    if size[ra] < size[rb]:
        ra, rb = rb, ra
    sa = root_ssn[ra]
    sb = root_ssn[rb]
    parent[rb] = ra
    size[ra] += size[rb]
    flags[ra] |= flags[rb]
    merges[ra] += merges[rb] + 1
    ssn_merges[ra] += ssn_merges[rb] + (1 if ssn_agree else 0)
    root_cl[ra] = root_cl[ra] or root_cl[rb]
    if sa == -2 or sb == -2 or (sa >= 0 and sb >= 0 and sa != sb):
        root_ssn[ra] = -2
    elif sa == -1:
        root_ssn[ra] = sb
    if root_has_year[rb]:
        if root_has_year[ra]:
            year_lo[ra] = min(year_lo[ra], year_lo[rb])
            year_hi[ra] = max(year_hi[ra], year_hi[rb])
        else:
            year_lo[ra] = year_lo[rb]
            year_hi[ra] = year_hi[rb]
            root_has_year[ra] = True
    return ra


@numba.njit(cache=True)
def _crosses_cannot_link(parent, root_cl, ra, rb, cl_left, cl_right):  # pragma: no cover
    """Whether merging roots ``ra`` and ``rb`` would put a cannot-link pair in one cluster."""
    if not (root_cl[ra] and root_cl[rb]):
        return False
    for k in range(cl_left.shape[0]):
        fx = _find(parent, cl_left[k])
        fy = _find(parent, cl_right[k])
        if (fx == ra and fy == rb) or (fx == rb and fy == ra):
            return True
    return False


@numba.njit(cache=True)
def _greedy(n, left, right, weight, ssn_agree, ssn, year, has_year, max_gap, overwhelming,
            guard_direct_dob, ml_left, ml_right, cl_left, cl_right):  # pragma: no cover - jitted
    parent = np.arange(n)
    size = np.ones(n, dtype=np.int64)
    root_ssn = ssn.copy()  # -1 none, >= 0 token code, -2 several (only after a must-link)
    year_lo = year.copy()
    year_hi = year.copy()
    root_has_year = has_year.copy()
    flags = np.zeros(n, dtype=np.int64)
    merges = np.zeros(n, dtype=np.int64)
    ssn_merges = np.zeros(n, dtype=np.int64)
    root_cl = np.zeros(n, dtype=np.bool_)  # the cluster holds a record of a cannot-link
    for k in range(cl_left.shape[0]):
        root_cl[cl_left[k]] = True
        root_cl[cl_right[k]] = True
    # review decisions first: a must-link merges whatever the guards say, unless it would
    # cross a cannot-link
    for k in range(ml_left.shape[0]):
        ra = _find(parent, ml_left[k])
        rb = _find(parent, ml_right[k])
        if ra == rb:
            continue
        if _crosses_cannot_link(parent, root_cl, ra, rb, cl_left, cl_right):
            flags[ra] |= _REVIEW_SPLIT
            flags[rb] |= _REVIEW_SPLIT
            continue
        root = _union(parent, size, flags, merges, ssn_merges, root_ssn, year_lo, year_hi,
                      root_has_year, root_cl, ra, rb, False)
        flags[root] |= _REVIEW_MERGE
    for e in range(left.shape[0]):
        a = left[e]
        b = right[e]
        ra = _find(parent, a)
        rb = _find(parent, b)
        if ra == rb:
            continue
        if _crosses_cannot_link(parent, root_cl, ra, rb, cl_left, cl_right):
            flags[ra] |= _REVIEW_SPLIT
            flags[rb] |= _REVIEW_SPLIT
            continue
        sa = root_ssn[ra]
        sb = root_ssn[rb]
        ssn_conflict = ((sa == -2 and sb != -1) or (sb == -2 and sa != -1)
                        or (sa >= 0 and sb >= 0 and sa != sb))
        dob_conflict = False
        if root_has_year[ra] and root_has_year[rb]:
            span = max(year_hi[ra], year_hi[rb]) - min(year_lo[ra], year_lo[rb])
            if span > max_gap:
                direct = 0
                if has_year[a] and has_year[b]:
                    direct = abs(year[a] - year[b])
                dob_conflict = guard_direct_dob or span > direct
        conflict = ssn_conflict or dob_conflict
        # different SSNs never share a cluster, however heavy the pair (twins, a parent and
        # child at one address); a birth-year conflict yields to an overwhelming weight
        if ssn_conflict or (dob_conflict and weight[e] < overwhelming):
            flag = _REFUSED_SSN if ssn_conflict else _REFUSED_DOB
            flags[ra] |= flag
            flags[rb] |= flag
            continue
        root = _union(parent, size, flags, merges, ssn_merges, root_ssn, year_lo, year_hi,
                      root_has_year, root_cl, ra, rb, ssn_agree[e])
        if conflict:
            flags[root] |= _OVERRIDE
    roots = np.empty(n, dtype=np.int64)
    for i in range(n):
        roots[i] = _find(parent, i)
    return roots, size, flags, merges, ssn_merges


def greedy_clusters(n: int, left: np.ndarray, right: np.ndarray, weight: np.ndarray, *,
                    ssn_codes: np.ndarray | None = None, birth_year: np.ndarray | None = None,
                    ssn_agree: np.ndarray | None = None, max_birth_year_gap: int = 1,
                    overwhelming_weight: float = np.inf,
                    direct_pair_guards: tuple[str, ...] = (),
                    match_threshold: float = 0.0,
                    must_link: tuple[np.ndarray, np.ndarray] | None = None,
                    cannot_link: tuple[np.ndarray, np.ndarray] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy guarded clustering on row positions.

    Args:
        n: Number of records.
        left, right: Positions of the records of each match pair.
        weight: Match weight of each pair.
        ssn_codes: Integer SSN token code per record (-1 missing).
        birth_year: Birth year per record (``NaN`` or <0 when missing).
        ssn_agree: Whether each pair's SSN tokens agree.
        max_birth_year_gap: Largest birth-year span a cluster may hold without DOB evidence.
        overwhelming_weight: Pairs at or above this weight merge despite a conflict.
        direct_pair_guards: Guards (``"birth_year"``; ``"ssn"`` is always on) that also refuse
            a conflict the merging pair shows by itself.
        match_threshold: Only used to word ``cluster_reason``.
        must_link: ``(left, right)`` positions of records a person decided are one (merged
            first, in the order given, whatever the guards say).
        cannot_link: ``(left, right)`` positions of records a person decided are two (never
            put in one cluster).

    Returns:
        ``(labels, reasons)``: a cluster label (a representative position) and a reason per record.
    """
    m = len(left)
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    order = np.lexsort((right, left, -weight))
    ssn = (np.full(n, -1, dtype=np.int64) if ssn_codes is None
           else np.asarray(ssn_codes, dtype=np.int64))
    if birth_year is None:
        year = np.zeros(n, dtype=np.int64)
        has_year = np.zeros(n, dtype=np.bool_)
    else:
        by = pd.to_numeric(pd.Series(birth_year), errors="coerce").to_numpy(dtype=float)
        has_year = np.isfinite(by) & (by >= 0)
        year = np.where(has_year, by, 0).astype(np.int64)
    agree = (np.zeros(m, dtype=np.bool_) if ssn_agree is None
             else np.asarray(ssn_agree, dtype=np.bool_))
    ml_left, ml_right = _position_pairs(must_link, n)
    cl_left, cl_right = _position_pairs(cannot_link, n)
    roots, size, flags, merges, ssn_merges = _greedy(
        n, left[order], right[order], weight[order], agree[order], ssn, year, has_year,
        int(max_birth_year_gap), float(overwhelming_weight),
        "birth_year" in direct_pair_guards, ml_left, ml_right, cl_left, cl_right)
    root_reason = np.full(n, f"fs_weight>={match_threshold:g}", dtype=object)
    root_reason[(merges > 0) & (ssn_merges == merges)] = "ssn_token"
    root_reason[(flags & _OVERRIDE) > 0] = f"override:weight>={overwhelming_weight:g}"
    root_reason[size == 1] = "singleton"
    root_reason[(flags & _REVIEW_MERGE) > 0] = "review:must_link"
    root_reason[(flags & _REFUSED_DOB) > 0] = "split:dob_conflict"
    root_reason[(flags & _REFUSED_SSN) > 0] = "split:ssn_conflict"
    root_reason[(flags & _REVIEW_SPLIT) > 0] = "review:cannot_link"
    return roots, root_reason[roots]


def _position_pairs(pairs: tuple[np.ndarray, np.ndarray] | None,
                    n: int) -> tuple[np.ndarray, np.ndarray]:
    if pairs is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    left = np.asarray(pairs[0], dtype=np.int64)
    right = np.asarray(pairs[1], dtype=np.int64)
    if left.shape != right.shape:
        raise ValueError("constraint pairs need as many left as right positions")
    if len(left) and (min(left.min(), right.min()) < 0 or max(left.max(), right.max()) >= n):
        raise IndexError("constraint positions out of range")
    return left, right


def _key_pairs(keys: pd.Index, pairs: pd.DataFrame | list | None
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions of constraint pairs given as record keys; pairs with a record that is not
    being clustered (not linked in this run) are left out."""
    if pairs is None:
        return None
    frame = pairs if isinstance(pairs, pd.DataFrame) else pd.DataFrame(
        list(pairs), columns=["record_key_l", "record_key_r"])
    if frame.empty:
        return None
    left = keys.get_indexer(frame["record_key_l"].astype(str))
    right = keys.get_indexer(frame["record_key_r"].astype(str))
    both = (left >= 0) & (right >= 0) & (left != right)
    return left[both], right[both]


def constraint_conflicts(must_link: pd.DataFrame | list, cannot_link: pd.DataFrame | list
                         ) -> list[tuple[str, str]]:
    """The cannot-link pairs (record keys) whose two records the must-links join, directly or
    through a chain of must-links: decisions that contradict each other."""
    def frame(pairs: pd.DataFrame | list) -> pd.DataFrame:
        return pairs if isinstance(pairs, pd.DataFrame) else pd.DataFrame(
            list(pairs), columns=["record_key_l", "record_key_r"])

    must, cannot = frame(must_link), frame(cannot_link)
    if must.empty or cannot.empty:
        return []
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(must["record_key_l"].astype(str), must["record_key_r"].astype(str),
                    strict=True):
        parent[find(a)] = find(b)
    return [(a, b) for a, b in zip(cannot["record_key_l"].astype(str),
                                   cannot["record_key_r"].astype(str), strict=True)
            if find(a) == find(b)]


def cluster_records(record_keys: pd.Series | pd.Index | list, scored_pairs: pd.DataFrame,
                    encoded: pd.DataFrame, spec: LinkSpec, *,
                    must_link: pd.DataFrame | list | None = None,
                    cannot_link: pd.DataFrame | list | None = None) -> pd.DataFrame:
    """Cluster records from scored pairs, honouring review decisions.

    Args:
        record_keys: Every record to cluster (records in no match pair become singletons).
        scored_pairs: ``record_key_l``, ``record_key_r``, ``match_weight``, ``match_class`` and
            the gamma columns.
        encoded: Encoded frame (``record_key`` plus the SSN token and birth-year columns).
        spec: Linkage spec (``clustering`` and ``fellegi_sunter`` settings).
        must_link, cannot_link: Review decisions as ``record_key_l``, ``record_key_r`` (a
            frame or a list of key pairs); a pair with a record not in ``record_keys`` is left
            out (e.g. a record known only under an earlier key after a rotation).

    Returns:
        DataFrame ``record_key``, ``cluster_id`` (int, numbered by each cluster's smallest
        record_key), ``cluster_reason``; one row per record, in ``record_keys`` order.
    """
    keys = pd.Index(pd.Series(record_keys).astype(str).to_numpy(dtype=object))
    if not keys.is_unique:
        raise ValueError("record_keys must be unique")
    n = len(keys)
    settings = spec.clustering
    fs = spec.fellegi_sunter
    matches = scored_pairs[scored_pairs["match_class"] == "match"]
    left = keys.get_indexer(matches["record_key_l"].astype(str))
    right = keys.get_indexer(matches["record_key_r"].astype(str))
    if (left < 0).any() or (right < 0).any():
        raise KeyError("scored pairs refer to record_keys that are not being clustered")

    rows = pd.Index(encoded["record_key"].astype(str)).get_indexer(keys)
    ssn_codes = None
    ssn_agree = None
    col = settings.ssn_token_column
    if col and col in encoded.columns:
        values = encoded[col].to_numpy(dtype=object)
        codes = pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)
        ssn_codes = np.where(rows >= 0, codes[np.maximum(rows, 0)], -1)
        ssn_comp = next((c for c in spec.comparisons if c.column == col), None)
        if ssn_comp is not None and ssn_comp.gamma_column in matches.columns:
            ssn_agree = matches[ssn_comp.gamma_column].to_numpy() == 1
        else:
            ssn_agree = ((ssn_codes[left] >= 0) & (ssn_codes[left] == ssn_codes[right]))
    birth_year = None
    col = settings.birth_year_column
    if col and col in encoded.columns:
        by = pd.to_numeric(encoded[col], errors="coerce").to_numpy(dtype=float)
        birth_year = np.where(rows >= 0, by[np.maximum(rows, 0)], np.nan)

    labels, reasons = greedy_clusters(
        n, left, right, matches["match_weight"].to_numpy(), ssn_codes=ssn_codes,
        birth_year=birth_year, ssn_agree=ssn_agree,
        max_birth_year_gap=settings.max_birth_year_gap,
        overwhelming_weight=fs.overwhelming_weight,
        direct_pair_guards=tuple(settings.direct_pair_guards),
        match_threshold=fs.match_weight_threshold,
        must_link=_key_pairs(keys, must_link), cannot_link=_key_pairs(keys, cannot_link))
    # number clusters by their smallest record_key
    key_rank = np.empty(n, dtype=np.int64)
    key_rank[np.argsort(keys.to_numpy(), kind="stable")] = np.arange(n)
    first = pd.Series(key_rank).groupby(labels).transform("min").to_numpy()
    ids = np.searchsorted(np.unique(first), first)
    return pd.DataFrame({"record_key": keys.to_numpy(), "cluster_id": ids.astype(np.int64),
                         "cluster_reason": reasons})
