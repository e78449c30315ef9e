"""Stable person IDs across runs.

Rules, given this run's clusters and last run's crosswalk (``record_key -> person_id``):

* a previous person whose records now sit in several clusters keeps its ID in the cluster
  holding most of its records (ties: smallest ``cluster_id``); every other part gets a new ID
  (event ``split_from``, related to the previous person);
* a cluster that is the main part of several previous persons keeps the ID of the one with the
  most records in it (ties: the person with the smallest record key); the others are
  ``merged_into`` it;
* a cluster with no previous records gets a new ID (event ``created``);
* an unchanged person keeps its ID and no event is written (``carried`` is reserved for callers
  that want to log every person).

New IDs are ``"P"`` + 12 RFC 4648 base32 characters drawn from ``rng`` (a
``numpy.random.Generator`` or ``random.Random``; ``None`` uses :mod:`secrets`). They are random,
never derived from tokens, and never reuse a previous ID.
"""

from __future__ import annotations

import random
import secrets

import numpy as np
import pandas as pd

__all__ = ["BASE32_ALPHABET", "ID_HISTORY_COLUMNS", "assign_person_ids", "new_person_ids"]

BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ID_HISTORY_COLUMNS = ["person_id", "event", "related_person_id", "record_count", "reason"]
_ID_CHARS = 12


def new_person_ids(count: int, rng: np.random.Generator | random.Random | None,
                   used: set[str] | None = None) -> list[str]:
    """``count`` distinct new person IDs not in ``used`` (``used`` is updated)."""
    used = set() if used is None else used
    out: list[str] = []
    alphabet = np.array(list(BASE32_ALPHABET))
    while len(out) < count:
        need = count - len(out)
        if isinstance(rng, np.random.Generator):
            chars = alphabet[rng.integers(0, 32, size=(need, _ID_CHARS))]
            candidates = ["P" + "".join(row) for row in chars]
        elif isinstance(rng, random.Random):
            candidates = ["P" + "".join(rng.choice(BASE32_ALPHABET) for _ in range(_ID_CHARS))
                          for _ in range(need)]
        elif rng is None:
            candidates = ["P" + "".join(secrets.choice(BASE32_ALPHABET)
                                        for _ in range(_ID_CHARS)) for _ in range(need)]
        else:
            raise TypeError("rng must be a numpy Generator, random.Random or None")
        for cand in candidates:
            if cand not in used:
                used.add(cand)
                out.append(cand)
    return out


def assign_person_ids(
    clusters: pd.DataFrame,
    previous_crosswalk: pd.DataFrame | None,
    rng: np.random.Generator | random.Random | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every cluster a person ID, carrying IDs over from the previous crosswalk.

    Args:
        clusters: ``record_key``, ``cluster_id`` (one row per record).
        previous_crosswalk: ``record_key``, ``person_id`` from the last run (may be empty/None).
        rng: Source of randomness for new IDs.

    Returns:
        ``(crosswalk, id_history)``: ``crosswalk[record_key, person_id]`` in ``clusters`` order,
        and ``id_history[person_id, event, related_person_id, record_count, reason]`` with one
        row per ``created``, ``split_from`` or ``merged_into`` event.
    """
    current = clusters[["record_key", "cluster_id"]].copy()
    current["record_key"] = current["record_key"].astype(str)
    if previous_crosswalk is None or len(previous_crosswalk) == 0:
        previous = pd.DataFrame({"record_key": pd.Series(dtype=object),
                                 "person_id": pd.Series(dtype=object)})
    else:
        previous = previous_crosswalk[["record_key", "person_id"]].astype(str)
    used = set(previous["person_id"])
    joined = current.merge(previous, on="record_key", how="left")
    sizes = current.groupby("cluster_id").size()

    # records of each previous person per cluster
    parts = (joined.dropna(subset=["person_id"])
             .groupby(["cluster_id", "person_id"]).size().rename("n").reset_index())
    # Ties are broken by each previous person's smallest record key, not by the (random) ID,
    # so which person survives a tied merge depends only on the records: re-running after a
    # crash gives the same grouping and history whatever IDs were drawn.
    # (the smallest key of each person by sorting once: a groupby min of strings runs a Python
    # function per person, seconds at 50k persons)
    first_key = (previous.sort_values("record_key", kind="stable")
                 .drop_duplicates("person_id").set_index("person_id")["record_key"])
    parts["first_key"] = parts["person_id"].map(first_key)
    parts_per_person = parts.groupby("person_id")["cluster_id"].transform("size")
    # the main part of each previous person: most records, then smallest cluster_id
    main = (parts.sort_values(["person_id", "n", "cluster_id"], ascending=[True, False, True])
            .drop_duplicates("person_id"))
    # a cluster that is the main part of several persons keeps the largest (then first key)
    claims = main.sort_values(["cluster_id", "n", "first_key", "person_id"],
                              ascending=[True, False, True, True])
    winners = claims.drop_duplicates("cluster_id")
    losers = claims[~claims.index.isin(winners.index)]
    person_of_cluster = dict(zip(winners["cluster_id"], winners["person_id"], strict=True))

    events: list[dict] = []
    claim_count = claims.groupby("cluster_id").size()
    for row in losers.itertuples(index=False):
        events.append({"person_id": row.person_id, "event": "merged_into",
                       "related_person_id": person_of_cluster[row.cluster_id],
                       "record_count": int(row.n),
                       "reason": f"merge: cluster holds {int(claim_count[row.cluster_id])} "
                                 "previous persons"})

    unclaimed = [c for c in sizes.index if c not in person_of_cluster]
    fresh = new_person_ids(len(unclaimed), rng, used)
    # for split parts: the previous person contributing most records (ties: first key)
    top_prev = (parts.assign(parts_of_person=parts_per_person.to_numpy())
                .sort_values(["cluster_id", "n", "first_key", "person_id"],
                             ascending=[True, False, True, True])
                .drop_duplicates("cluster_id").set_index("cluster_id"))
    for cluster_id, pid in zip(unclaimed, fresh, strict=True):
        person_of_cluster[cluster_id] = pid
        if cluster_id in top_prev.index:
            src = top_prev.loc[cluster_id]
            events.append({"person_id": pid, "event": "split_from",
                           "related_person_id": src["person_id"],
                           "record_count": int(sizes[cluster_id]),
                           "reason": f"split: previous person's records now in "
                                     f"{int(src['parts_of_person'])} clusters"})
        else:
            events.append({"person_id": pid, "event": "created", "related_person_id": None,
                           "record_count": int(sizes[cluster_id]), "reason": "new cluster"})

    crosswalk = pd.DataFrame({
        "record_key": current["record_key"].to_numpy(),
        "person_id": current["cluster_id"].map(person_of_cluster).to_numpy(dtype=object),
    })
    history = pd.DataFrame(events, columns=ID_HISTORY_COLUMNS)
    history["record_count"] = history["record_count"].astype(np.int64)
    return crosswalk, history
