"""Link every current record into persons and keep person IDs stable across runs.

Only records encoded under the current key and the current encoding schema are linked; after
a key rotation, records known only under an earlier key keep their persons
(`_keep_old_key_persons`) and the overlap period's twins are counted (`_rotation_counts`).
The possible matches go to the clerical-review list as similarity profiles, never values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from linkage.classify import clerical_review
from linkage.encode import load_encoding_schema
from linkage.engine import link_records
from linkage.persons import ID_HISTORY_COLUMNS, assign_person_ids, new_person_ids
from linkage.rotation import bridge_overlap, carry_over_persons
from linkage.spec import LinkSpec
from pipelines.faults import crash_point
from pipelines.state import StateStore
from pipelines.steps.context import RunContext


def link_workspace(run: RunContext, period: str, seed: int | None = None) -> dict[str, Any]:
    """Link all current records, cluster them into persons and keep person IDs stable.

    Only records with a version under the current key and the current encoding schema take
    part (tokens and filters of different keys, or of two schema versions, never match). After
    a key rotation (or an encoding-schema upgrade), a record known only under an earlier key
    (or schema) keeps its person but is not linked: it is counted in `old_key_records`
    (docs/keys.md, "Rotation"); it links again once its partner sends it again.
    """
    crash_point("link:start")
    ws, run_id = run.ws, run.run_id
    spec = LinkSpec.load()
    # None when the current key is neither configured nor held: nothing can have been encoded
    # then, and every stored record is linked as before rotation existed
    current_fp = ws.fingerprint_or_none()
    with StateStore(ws.state_db) as state:
        # linkable: encoded under the current key and the current encoding schema
        records = state.latest_records(current_fp, only_key=True,
                                       encoding_schema=load_encoding_schema().id)
        versions = state.records_by_key()  # lineage of every stored version, any key
        if versions.empty:
            return {"records": 0, "persons": 0, "pairs": 0}
        previous = state.crosswalk()[["record_key", "person_id"]]
        rng = np.random.default_rng(seed) if seed is not None else np.random.default_rng()
        lineage = ["record_key", "partner_id", "partner_record_id"]
        if len(records):
            result = link_records(records, spec, keep_pairs="scored")  # matches + review
            crosswalk, history = assign_person_ids(result.clusters, previous, rng)
            crosswalk = crosswalk.merge(records[lineage], on="record_key").merge(
                result.clusters[["record_key", "cluster_reason"]], on="record_key", how="left")
            pairs = result.pairs
            candidate_count = result.stats["candidate_pairs"]
        else:
            crosswalk = pd.DataFrame(columns=[*lineage, "person_id", "cluster_reason"])
            history = pd.DataFrame(columns=ID_HISTORY_COLUMNS)
            pairs = pd.DataFrame()
            candidate_count = 0
        # known only under an earlier key (after a rotation): persons kept, not linked
        old_key = versions[~versions["record_key"].isin(set(crosswalk["record_key"]))]
        kept, history = _keep_old_key_persons(old_key, previous, crosswalk, history, rng)
        kept = kept.merge(old_key[lineage].drop_duplicates("record_key"), on="record_key")
        if len(kept):
            kept = kept.assign(cluster_reason="old_key_only")
            crosswalk = pd.concat([crosswalk, kept], ignore_index=True) if len(crosswalk) \
                else kept
        review = _review_list(pairs)
        state.replace_crosswalk(crosswalk, history, review, run_id)
        state.snapshot_crosswalk(period, run_id)
    summary = {
        "records": len(crosswalk),
        "persons": int(crosswalk["person_id"].nunique()),
        # records with nothing to link on (every identifier missing or dropped at intake):
        # each is its own person, counted so the run summary can say so
        "no_identifiers": nothing_to_link_on(records),
        "pairs": candidate_count,
        "matches": int((pairs["match_class"] == "match").sum()) if len(pairs) else 0,
        "possible": len(review),
        "id_events": len(history),
    }
    if current_fp is not None:
        summary.update(_rotation_counts(versions, period, current_fp, crosswalk, previous,
                                        len(kept)))
    crash_point("link:end")
    return summary


def _keep_old_key_persons(old_key: pd.DataFrame, previous: pd.DataFrame,
                          crosswalk: pd.DataFrame, history: pd.DataFrame,
                          rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Persons of records known only under an earlier key (not linked this run).

    Each keeps its previous person; if that person was merged into another this run it
    follows the merge. A record never linked before (sent only under the old key during the
    overlap) gets a person of its own until it arrives under the current key.
    """
    keys = old_key[["record_key"]].drop_duplicates()
    kept = keys.merge(previous, on="record_key", how="left")
    merged = history[history["event"] == "merged_into"]
    follow = dict(zip(merged["person_id"], merged["related_person_id"], strict=True))
    kept["person_id"] = kept["person_id"].map(lambda pid: follow.get(pid, pid))
    missing = kept["person_id"].isna()
    if missing.any():
        used = set(previous["person_id"]) | set(crosswalk["person_id"])
        fresh = new_person_ids(int(missing.sum()), rng, used)
        kept.loc[missing, "person_id"] = fresh
        created = pd.DataFrame({"person_id": fresh, "event": "created",
                                "related_person_id": None, "record_count": 1,
                                "reason": "old key only: not linked"})
        history = pd.concat([history, created], ignore_index=True) if len(history) \
            else created
        history["record_count"] = history["record_count"].astype(np.int64)
    return kept[["record_key", "person_id"]], history


def _rotation_counts(versions: pd.DataFrame, period: str, current_fp: str,
                     crosswalk: pd.DataFrame, previous: pd.DataFrame,
                     old_key_records: int) -> dict[str, int]:
    """Counts only: records left unlinked on an earlier key and, for a period encoded under
    two keys (a rotation's overlap), the partner records bridged by `linkage.rotation`."""
    counts = {"old_key_records": old_key_records}
    here = versions[versions["period"] == period].dropna(subset=["key_fingerprint"])
    new = here[here["key_fingerprint"] == current_fp].drop_duplicates("record_key")
    old = here[here["key_fingerprint"] != current_fp].drop_duplicates(
        ["key_fingerprint", "record_key"])
    if new.empty or old.empty:
        return counts
    both = set(new["partner_id"]) & set(old["partner_id"])  # partners that sent the pair
    bridged = old_only = new_only = carried = 0
    for fingerprint, old_side in old[old["partner_id"].isin(both)].groupby("key_fingerprint"):
        new_side = new[new["partner_id"].isin(set(old_side["partner_id"]))]
        bridge = bridge_overlap(old_side.assign(key_fingerprint=fingerprint), new_side)
        bridged += len(bridge.mapping)
        old_only += len(bridge.old_only)
        new_only += len(bridge.new_only)
        twins = carry_over_persons(bridge, previous)  # the person each new-key twin should keep
        now = twins.merge(crosswalk[["record_key", "person_id"]], on="record_key",
                          suffixes=("_old", "_now"))
        carried += int((now["person_id_old"] == now["person_id_now"]).sum())
    counts.update({"overlap_bridged": bridged, "overlap_old_only": old_only,
                   "overlap_new_only": new_only, "overlap_persons_kept": carried})
    return counts


def nothing_to_link_on(records: pd.DataFrame) -> int:
    """Records without a single identifying token or filter (the address filter alone, which
    a bare ZIP fills, does not count): they can only ever be their own person."""
    if records is None or records.empty:
        return 0
    identifying = [c for c in records.columns if c.startswith(("tok_", "ts_", "bf_"))
                   and c != "bf_address"]
    if not identifying:
        return 0
    return int(records[identifying].isna().all(axis=1).sum())


REVIEW_COLUMNS = ["record_key_l", "record_key_r", "match_weight", "match_probability",
                  "profile"]


def _review_list(pairs: pd.DataFrame) -> pd.DataFrame:
    """Possible matches with their similarity profile (`gamma_<feature>=level;...`), no PII."""
    if pairs is None or pairs.empty:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    review = clerical_review(pairs)
    gammas = [c for c in review.columns if c.startswith("gamma_")]
    review["profile"] = [";".join(f"{g}={int(v)}" for g, v in zip(gammas, row, strict=True))
                         for row in review[gammas].itertuples(index=False)]
    if "frequency_adjustment" in review.columns:  # a common name's agreement weighed less
        adjusted = review["frequency_adjustment"].to_numpy() < 0
        review.loc[adjusted, "profile"] += [f";frequency_adjustment={v:.1f}" for v in
                                            review.loc[adjusted, "frequency_adjustment"]]
    return review[REVIEW_COLUMNS]
