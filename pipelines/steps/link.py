"""Link every current record into persons and keep person IDs stable across runs.

Only records encoded under the current key and the current encoding schema are linked; after
a key rotation, records known only under an earlier key keep their persons
(`_keep_old_key_persons`) and the overlap period's twins are counted (`_rotation_counts`).
The possible matches go to the clerical-review list as similarity profiles, never values.

Review decisions (docs/review.md) in force are passed to clustering as must-link and
cannot-link constraints on record keys (partner record ids, so they hold across key
rotations); a person they split or merge says so in the ID history. Each link stores what
review needs: the scored pairs and a random pool of near-threshold non-matches with their
gamma levels (`review_pairs`), the model snapshot and the census of every candidate pair by
weight (`link_models`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from linkage import accuracy
from linkage.classify import clerical_review
from linkage.encode import load_encoding_schema
from linkage.engine import link_records
from linkage.persons import ID_HISTORY_COLUMNS, assign_person_ids, new_person_ids
from linkage.review import pair_id
from linkage.rotation import bridge_overlap, carry_over_persons
from linkage.spec import LinkSpec
from pipelines.faults import crash_point
from pipelines.records import PROFILE_COLUMNS
from pipelines.state import StateStore
from pipelines.steps.context import RunContext
from pipelines.workspace import Workspace, WorkspaceError

#: Non-match candidates kept per link, drawn uniformly near the threshold, for review samples.
POOL_SIZE = 20_000


def link_spec(ws: Workspace) -> LinkSpec:
    """The current linkage spec with the workspace's `[linkage]` thresholds, if set."""
    spec = LinkSpec.load()
    fs = spec.fellegi_sunter
    changes = {name: value for name, value in (
        ("match_weight_threshold", ws.match_weight_threshold),
        ("possible_weight_threshold", ws.possible_weight_threshold)) if value is not None}
    if not changes:
        return spec
    fs = dataclasses.replace(fs, **changes)
    if fs.possible_weight_threshold > fs.match_weight_threshold:
        raise WorkspaceError(
            f"{ws.config_path}: [linkage] possible_weight_threshold "
            f"({fs.possible_weight_threshold:g}) is above the match threshold "
            f"({fs.match_weight_threshold:g})")
    return spec.replace(fellegi_sunter=fs)


def decision_keys(decisions: pd.DataFrame) -> pd.DataFrame:
    """Decisions with the record keys of their two records (`record_key_l`, `record_key_r`)."""
    if decisions is None or decisions.empty:
        return pd.DataFrame(columns=["decision_id", "decision", "record_key_l",
                                     "record_key_r"])
    return decisions.assign(
        record_key_l=decisions["partner_id_l"] + ":" + decisions["partner_record_id_l"],
        record_key_r=decisions["partner_id_r"] + ":" + decisions["partner_record_id_r"])


def _constraints(decisions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    keyed = decision_keys(decisions)
    cols = ["record_key_l", "record_key_r"]
    return (keyed.loc[keyed["decision"] == "match", cols],
            keyed.loc[keyed["decision"] == "distinct", cols])


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
    spec = link_spec(ws)
    # None when the current key is neither configured nor held: nothing can have been encoded
    # then, and every stored record is linked as before rotation existed
    current_fp = ws.fingerprint_or_none()
    with StateStore(ws.state_db) as state:
        # linkable: encoded under the current key and the current encoding schema
        records = state.latest_records(current_fp, only_key=True,
                                       encoding_schema=load_encoding_schema().id,
                                       exclude=PROFILE_COLUMNS)  # reporting only
        versions = state.records_by_key()  # lineage of every stored version, any key
        if versions.empty:
            return {"records": 0, "persons": 0, "pairs": 0}
        previous = state.crosswalk()[["record_key", "person_id"]]
        decisions = decision_keys(state.decisions())
    # The read is closed before linking: DuckDB keeps the pages it read while a connection is
    # open (about 450 MB at 100k records), which linking does not need. The run's writer lock
    # keeps other runs out meanwhile, and the results are written in one block below.
    rng = np.random.default_rng(seed) if seed is not None else np.random.default_rng()
    lineage = ["record_key", "partner_id", "partner_record_id"]
    must_link, cannot_link = _constraints(decisions)
    result = None
    if len(records):
        fs = spec.fellegi_sunter
        plan = accuracy.CensusPlan(
            accuracy.strata_edges(fs.possible_weight_threshold, fs.match_weight_threshold),
            # its own stream: person ids draw from `rng` exactly as before the census
            pool_size=POOL_SIZE, seed=int(np.random.default_rng(
                None if seed is None else [seed, 1]).integers(2 ** 31)))
        result = link_records(records, spec, keep_pairs="scored",  # matches + review
                              must_link=must_link, cannot_link=cannot_link, census=plan)
        crosswalk, history = assign_person_ids(result.clusters, previous, rng)
        history = _review_events(history, previous, crosswalk, decisions)
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
    with StateStore(ws.state_db) as state:
        state.replace_crosswalk(crosswalk, history, review, run_id)
        state.snapshot_crosswalk(period, run_id)
        if result is not None:
            _store_review(state, run_id, period, result, crosswalk, spec)
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
        **_decision_counts(decisions, set(records["record_key"]) if len(records) else set()),
    }
    if current_fp is not None:
        summary.update(_rotation_counts(versions, period, current_fp, crosswalk, previous,
                                        len(kept)))
    crash_point("link:end")
    return summary


def _decision_counts(decisions: pd.DataFrame, linked: set[str]) -> dict[str, int]:
    """Decisions in force that clustering honoured this run, and those waiting for a record
    that was not linked (e.g. known only under an earlier key)."""
    active = decisions[decisions["decision"].isin(["match", "distinct"])]
    both = active["record_key_l"].isin(linked) & active["record_key_r"].isin(linked)
    return {"review_must_link": int((both & (active["decision"] == "match")).sum()),
            "review_cannot_link": int((both & (active["decision"] == "distinct")).sum()),
            "review_waiting": int((~both).sum())}


def _review_events(history: pd.DataFrame, previous: pd.DataFrame, crosswalk: pd.DataFrame,
                   decisions: pd.DataFrame) -> pd.DataFrame:
    """The ID history with the splits and merges that review decisions caused saying so."""
    active = decisions[decisions["decision"].isin(["match", "distinct"])]
    if history.empty or active.empty:
        return history
    before = dict(zip(previous["record_key"], previous["person_id"], strict=True))
    now = dict(zip(crosswalk["record_key"], crosswalk["person_id"], strict=True))
    history = history.copy()
    notes: dict[int, list[str]] = {}
    for row in active.itertuples(index=False):
        a, b = row.record_key_l, row.record_key_r
        was_a, was_b, is_a, is_b = before.get(a), before.get(b), now.get(a), now.get(b)
        if None in (is_a, is_b):
            continue
        if row.decision == "distinct" and was_a is not None and was_a == was_b \
                and is_a != is_b:
            hit = history.index[(history["event"] == "split_from")
                                & (history["related_person_id"] == was_a)
                                & history["person_id"].isin([is_a, is_b])]
        elif row.decision == "match" and None not in (was_a, was_b) and was_a != was_b \
                and is_a == is_b:
            hit = history.index[(history["event"] == "merged_into")
                                & (history["related_person_id"] == is_a)
                                & history["person_id"].isin([was_a, was_b])]
        else:
            continue
        for i in hit:
            notes.setdefault(i, []).append(f"{row.decision_id} ({row.decision})")
    for i, ids in notes.items():
        history.loc[i, "reason"] = (f"review decision {', '.join(ids)}: "
                                    f"{history.loc[i, 'reason']}")
    return history


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def census_json(frame: pd.DataFrame) -> str:
    """A census frame as JSON records (infinite stratum edges as null)."""
    records = frame.to_dict(orient="records")
    return json.dumps([{k: (_finite(v) if isinstance(v, float) else
                            v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                       for row in records])


def census_frame(text: str) -> pd.DataFrame:
    """The inverse of :func:`census_json` (null stratum edges back to -inf / +inf)."""
    frame = pd.DataFrame(json.loads(text))
    if "lo" in frame:
        frame["lo"] = frame["lo"].astype(float).fillna(-np.inf)
        frame["hi"] = frame["hi"].astype(float).fillna(np.inf)
    return frame


def _store_review(state: StateStore, run_id: str, period: str, result: Any,
                  crosswalk: pd.DataFrame, spec: LinkSpec) -> None:
    """The link's pairs at or above the possible weight and its non-match pool, with gamma
    profiles and whether the run linked them; its model snapshot and census."""
    census = result.census
    features = result.model.features
    pairs = pd.concat([result.pairs, census.pool], ignore_index=True) if len(census.pool) \
        else result.pairs
    person = dict(zip(crosswalk["record_key"], crosswalk["person_id"], strict=True))
    if len(pairs):
        profile = _gamma_profiles(pairs, list(features))
        frame = pd.DataFrame({
            "pair_id": [pair_id(a, b) for a, b in zip(pairs["record_key_l"],
                                                     pairs["record_key_r"], strict=True)],
            "record_key_l": pairs["record_key_l"], "record_key_r": pairs["record_key_r"],
            "match_weight": pairs["match_weight"].astype(float),
            "match_probability": pairs["match_probability"].astype(float),
            "match_class": pairs["match_class"].astype(str),
            "frequency_adjustment": pairs["frequency_adjustment"].astype(float),
            "profile": profile,
            "linked": pairs["record_key_l"].map(person).to_numpy()
                      == pairs["record_key_r"].map(person).to_numpy()})
    else:
        frame = pd.DataFrame(columns=["pair_id", "record_key_l", "record_key_r",
                                      "match_weight", "match_probability", "match_class",
                                      "frequency_adjustment", "profile", "linked"])
    state.replace_review_pairs(run_id, period, frame, json.dumps(result.model.snapshot()),
                               census_json(census.strata), census_json(census.histogram),
                               spec.version, census.pool_population)


def _gamma_profiles(pairs: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Each pair's gamma profile as text (``given_name=2;family_name=-1;...``): written once
    per distinct pattern (a few hundred, however many pairs) and taken per pair."""
    if not features:
        return np.full(len(pairs), "", dtype=object)
    gammas = pairs[features].astype(np.int64).to_numpy()
    if len(gammas) == 0:
        return np.empty(0, dtype=object)
    low = int(gammas.min())
    base = int(gammas.max()) - low + 1
    if base ** len(features) < 2 ** 62:  # one integer per pattern: its gammas as digits
        powers = base ** np.arange(len(features), dtype=np.int64)
        inverse, patterns = pd.factorize((gammas - low) @ powers)
        rows = (patterns[:, None] // powers) % base + low
    else:
        inverse, patterns = pd.factorize(pd.MultiIndex.from_arrays(list(gammas.T)))
        rows = np.array(list(patterns), dtype=np.int64).reshape(len(patterns), -1)
    labels = np.array([";".join(f"{feature}={int(g)}" for feature, g in zip(features, row,
                                                                             strict=True))
                       for row in rows], dtype=object)
    return labels[inverse]


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
