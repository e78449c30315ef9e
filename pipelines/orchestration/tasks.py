"""Prefect tasks: thin wrappers over library calls.

Every task that sees raw PII runs with `persist_result=False` and no cache policy, so nothing it
returns is written to Prefect's result storage; its exceptions are sanitised by `pii_safe` so a
library error message quoting a value never reaches Prefect's state messages or logs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from keys import KeyMismatchError
from linkage.classify import clerical_review
from linkage.encode import encode_participants, load_encoding_schema
from linkage.engine import SPEC_VERSION, LinkSpec, link_records
from linkage.normalize import normalize_participants
from linkage.persons import ID_HISTORY_COLUMNS, assign_person_ids, new_person_ids
from linkage.rotation import bridge_overlap, carry_over_persons
from pipelines.ingest import validate as intake
from pipelines.ingest.encoded import EncodedDropError, read_encoded_drop
from pipelines.orchestration.runners import crash_point
from pipelines.state import StateStore
from pipelines.warehouse.facts import (
    EVENT_DATASETS,
    PROFILE_COLUMNS,
    WAGE_MATCH_TOKENS,
    restricted_rows,
)
from pipelines.warehouse.publish import PublishInputs, publish
from pipelines.warehouse.report import write_report
from pipelines.workspace import Workspace, load_workspace

P = ParamSpec("P")
R = TypeVar("R")

PII_TASK = {"persist_result": False, "cache_policy": NO_CACHE}


class StageError(Exception):
    """A pipeline stage failed; the message names the stage and file, never a value."""


def pii_safe(stage: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Re-raise any unexpected exception as a `StageError` without its (possibly PII) message."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except (StageError, intake.FileRejected):
                raise
            except Exception as exc:
                where = kwargs.get("rel_path") or ""
                raise StageError(
                    f"{stage} failed{' on ' + str(where) if where else ''}: "
                    f"{type(exc).__name__} (details withheld: may contain personal data)"
                ) from None

        return inner

    return wrap


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class DropOutcome:
    """What happened to one dropped file (no PII)."""

    partner_id: str
    period: str
    dataset: str
    rel_path: str
    sha256: str
    status: str  # accepted | rejected | unchanged
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    replaced: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -- ingest a drop -------------------------------------------------------------------------------
@task(name="read-drop", retries=2, retry_delay_seconds=[1, 5], **PII_TASK)
@pii_safe("read")
def read_drop(workspace: str, rel_path: str) -> intake.ReadResult:
    """Read one dropped file into strings, applying the partner's column and value maps."""
    ws = load_workspace(workspace)
    ref = intake.parse_drop_path(ws.landing, ws.landing / rel_path)
    partner = ws.partner(ref.partner_id)
    return intake.read_table(ref.path, column_map=partner.columns, value_map=partner.values)


@task(name="validate-drop", **PII_TASK)
@pii_safe("validate")
def validate_drop(workspace: str, rel_path: str, frame: pd.DataFrame,
                  as_of: date) -> intake.ValidationOutcome:
    """Validate against the dataset's contract: accept or quarantine every row."""
    ws = load_workspace(workspace)
    ref = intake.parse_drop_path(ws.landing, ws.landing / rel_path)
    partner = ws.partner(ref.partner_id)
    return intake.validate_table(
        frame, ref.dataset, partner_id=ref.partner_id, period=ref.period, as_of=as_of,
        age_range=partner.age_range, max_quarantine_share=ws.max_quarantine_share,
        source_name=rel_path,
    )


@task(name="normalize", **PII_TASK)
@pii_safe("normalize")
def normalize(accepted: pd.DataFrame, as_of: date, rel_path: str = "") -> pd.DataFrame:
    """Normalize identifiers (names, dates, SSN, phone, email, address)."""
    return normalize_participants(accepted, as_of=as_of)


@task(name="encode", **PII_TASK)
@pii_safe("encode")
def encode(workspace: str, normalized: pd.DataFrame, accepted: pd.DataFrame, *,
           partner_id: str, period: str, sha256: str, rel_path: str = "") -> pd.DataFrame:
    """Keyed tokens and Bloom filters; returns the encoded frame with lineage, no raw PII."""
    ws = load_workspace(workspace)
    secret = ws.load_secret()
    schema = load_encoding_schema()
    encoded = encode_participants(normalized, secret, schema)
    encoded.insert(0, "record_key", partner_id + ":" + accepted["partner_record_id"].astype(str))
    encoded.insert(1, "partner_id", partner_id)
    encoded.insert(2, "partner_record_id", accepted["partner_record_id"].astype(str).values)
    encoded.insert(3, "period", period)
    encoded.insert(4, "file_sha256", sha256)
    encoded.insert(5, "source_row", accepted["__row"].astype("int64").values)
    for column in PROFILE_COLUMNS:  # reporting attributes (sensitive, not identifying)
        encoded[column] = (accepted[column].to_numpy() if column in accepted.columns
                           else None)
    encoded["key_fingerprint"] = encoded.attrs.get("key_fingerprint", secret.fingerprint)
    encoded["encoding_schema"] = encoded.attrs.get("encoding_schema", schema.id)
    return encoded.reset_index(drop=True)


@task(name="event-rows", **PII_TASK)
@pii_safe("encode")
def event_rows(workspace: str, accepted: pd.DataFrame, *, dataset: str, partner_id: str,
               period: str, sha256: str, as_of: date, rel_path: str = "") -> pd.DataFrame:
    """Rows of an event dataset for the restricted state (wage identities become tokens)."""
    tokens = None
    employer_hash_key = None
    if dataset == "wages":
        ws = load_workspace(workspace)
        secret = ws.load_secret()
        tokens = encode_participants(normalize_participants(accepted, as_of=as_of), secret,
                                     load_encoding_schema())
        employer_hash_key = secret.subkey("employer/v1")
    return restricted_rows(accepted, dataset=dataset, partner_id=partner_id, period=period,
                           sha256_hex=sha256, tokens=tokens,
                           employer_hash_key=employer_hash_key)


class EncodedDropRefused(Exception):
    """A partner-side encoded file was refused (wrong key, schema or shape); no PII inside."""


@task(name="read-encoded-drop", persist_result=False, cache_policy=NO_CACHE)
def read_encoded(workspace: str, rel_path: str, sha256: str) -> tuple[pd.DataFrame,
                                                                       tuple[int, int, int]]:
    """Read a partner-side encoded drop, refusing one made under another key or schema.

    During a key rotation's overlap a drop under a previous key (`previous_key_ids`) is
    accepted too; its records keep their key's fingerprint (docs/keys.md, "Rotation").
    """
    ws = load_workspace(workspace)
    ref = intake.parse_drop_path(ws.landing, ws.landing / rel_path)
    try:
        frame = read_encoded_drop(ref.path, expected_fingerprint=ws.expected_fingerprint(),
                                  expected_schema=load_encoding_schema(),
                                  expected_partner=ref.partner_id,
                                  previous_fingerprints=ws.previous_fingerprints())
    except (KeyMismatchError, EncodedDropError) as exc:
        raise EncodedDropRefused(str(exc)) from None
    attrs = dict(frame.attrs)
    encoded = frame.reset_index(drop=True)
    encoded.insert(0, "record_key", ref.partner_id + ":" + encoded["partner_record_id"].astype(str))
    encoded.insert(1, "partner_id", ref.partner_id)
    encoded.insert(3, "period", ref.period)
    encoded.insert(4, "file_sha256", sha256)
    for column in PROFILE_COLUMNS:
        if column not in encoded:
            encoded[column] = None
    encoded["key_fingerprint"] = attrs.get("key_fingerprint")
    encoded["encoding_schema"] = attrs.get("encoding_schema")
    counts = (int(attrs.get("rows_read", len(encoded))),
              int(attrs.get("rows_accepted", len(encoded))),
              int(attrs.get("rows_quarantined", 0)))
    return encoded, counts


def _event_table(dataset: str) -> str:
    if dataset not in EVENT_DATASETS:
        raise ValueError(f"not an event dataset: {dataset}")
    return f"events_{dataset}"


def store_event_rows(state: StateStore, dataset: str, rows: pd.DataFrame) -> None:
    """Replace one partner-period's rows of an event dataset in the restricted state."""
    table = _event_table(dataset)
    columns = list(rows.columns)
    exists = state.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()[0][0]
    if not exists:
        body = ", ".join(f'"{c}" {"BIGINT" if c == "source_row" else "VARCHAR"}'
                         for c in columns)
        state.con.execute(f"CREATE TABLE {table} ({body})")
    else:
        have = {r[0] for r in state.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
            [table]).fetchall()}
        for column in columns:
            if column not in have:
                state.con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" VARCHAR')
    if rows.empty:
        return
    first = rows.iloc[0]
    state.con.execute(f"DELETE FROM {table} WHERE partner_id = ? AND period = ?",  # noqa: S608
                      [first["partner_id"], first["period"]])
    state.con.register("events_in", rows)
    state.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM events_in")  # noqa: S608
    state.con.unregister("events_in")


def load_event_rows(state: StateStore) -> dict[str, pd.DataFrame]:
    """All stored rows of every event dataset."""
    tables = {r[0] for r in state.con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    return {d: state.con.execute(f"SELECT * FROM {_event_table(d)}").df()  # noqa: S608
            for d in EVENT_DATASETS if _event_table(d) in tables}


def _quarantine_path(ws: Workspace, partner_id: str, period: str, sha: str) -> Path:
    return ws.quarantine_dir / partner_id / period / f"{sha}.bin"


def encrypt_quarantine(ws: Workspace, quarantined: pd.DataFrame, *, partner_id: str,
                       period: str, sha: str) -> Path | None:
    """Write quarantined rows encrypted (AES-256-GCM, key derived from the shared secret)."""
    if quarantined is None or len(quarantined) == 0:
        return None
    key = ws.load_secret().subkey("quarantine/v1")
    nonce = os.urandom(12)
    payload = quarantined.astype(str).to_json(orient="records").encode()
    blob = nonce + AESGCM(key).encrypt(nonce, payload, sha.encode())
    path = _quarantine_path(ws, partner_id, period, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(blob)
    os.replace(tmp, path)
    return path


def decrypt_quarantine(ws: Workspace, path: Path, sha: str) -> pd.DataFrame:
    """Read back an encrypted quarantine file (for the analyst's corrections).

    Tries the current key, then previous keys still configured (a file written before a key
    rotation); once the old key is retired and deleted, its quarantine files stay sealed.
    """
    blob = path.read_bytes()
    ring = ws.held_secrets()
    secrets = [ring.current, *(s for k, s in ring.items() if k != ring.current.key_id)] \
        if ring is not None else [ws.load_secret()]
    for secret in secrets:
        try:
            payload = AESGCM(secret.subkey("quarantine/v1")).decrypt(blob[:12], blob[12:],
                                                                     sha.encode())
        except InvalidTag:
            continue
        return pd.DataFrame(json.loads(payload))
    raise InvalidTag(f"{path.name}: no configured key opens this quarantine file")


@task(name="store-drop", retries=2, retry_delay_seconds=[1, 5], **PII_TASK)
@pii_safe("store")
def store_drop(workspace: str, outcome: DropOutcome, encoded: pd.DataFrame | None,
               validation: intake.ValidationOutcome | None, run_id: str, code_version: str,
               rel_path: str = "") -> DropOutcome:
    """Record the file in the ledger, its row issues, encrypted quarantine and encoded rows."""
    crash_point("store-drop:start")
    ws = load_workspace(workspace)
    fingerprint = None
    schema_id = None
    if encoded is not None and "key_fingerprint" in encoded:
        fingerprint = (str(encoded["key_fingerprint"].iloc[0]) if len(encoded)
                       else encoded.attrs.get("key_fingerprint"))
        schema_id = (str(encoded["encoding_schema"].iloc[0]) if len(encoded)
                     else encoded.attrs.get("encoding_schema"))
    with StateStore(ws.state_db) as state:
        # one accepted file per key: the two files of a rotation's overlap do not replace
        # each other
        previous = state.current_file(outcome.partner_id, outcome.period, outcome.dataset,
                                      key_fingerprint=fingerprint)
        if validation is not None and len(validation.quarantined):
            encrypt_quarantine(ws, validation.quarantined, partner_id=outcome.partner_id,
                               period=outcome.period, sha=outcome.sha256)
        if outcome.status == "accepted":
            if previous and previous != outcome.sha256:
                state.supersede(previous, outcome.sha256, outcome.partner_id, outcome.period,
                                outcome.dataset)
                outcome.replaced = previous
            if encoded is not None and outcome.dataset == "participants":
                state.store_records(encoded)
            elif encoded is not None:
                store_event_rows(state, outcome.dataset, encoded)
        if validation is not None:
            issues = intake.issues_frame(validation)
            state.record_issues(outcome.sha256, issues)
            if len(issues) and validation.gx_result is not None:
                # The report sent back to the partner: rules and row numbers, never values.
                intake.write_data_docs(
                    validation.gx_result, ws.reports_dir / outcome.partner_id /
                    outcome.period / outcome.dataset, title=outcome.rel_path)
        state.record_file({
            "sha256": outcome.sha256, "partner_id": outcome.partner_id,
            "period": outcome.period, "dataset": outcome.dataset,
            "rel_path": outcome.rel_path, "size_bytes": (ws.landing / outcome.rel_path)
            .stat().st_size, "status": outcome.status, "reason": outcome.reason,
            "rows_read": outcome.rows_read, "rows_accepted": outcome.rows_accepted,
            "rows_quarantined": outcome.rows_quarantined,
            "contract": intake.contract_version(outcome.dataset),
            "encoding_schema": schema_id, "key_fingerprint": fingerprint,
            "code_version": code_version, "run_id": run_id,
            "processed_at": pd.Timestamp.now("UTC").tz_localize(None),
        })
    crash_point("store-drop:end")
    get_run_logger().info(
        "%s %s/%s/%s: read %d, accepted %d, quarantined %d", outcome.status,
        outcome.partner_id, outcome.period, outcome.dataset, outcome.rows_read,
        outcome.rows_accepted, outcome.rows_quarantined,
    )
    return outcome


# -- link and publish ----------------------------------------------------------------------------
@task(name="link", persist_result=False, cache_policy=NO_CACHE)
def link(workspace: str, run_id: str, period: str, seed: int | None = None) -> dict[str, Any]:
    """Link all current records, cluster them into persons and keep person IDs stable.

    Only records with a version under the current key and the current encoding schema take
    part (tokens and filters of different keys, or of two schema versions, never match). After
    a key rotation (or an encoding-schema upgrade), a record known only under an earlier key
    (or schema) keeps its person but is not linked: it is counted in `old_key_records`
    (docs/keys.md, "Rotation"); it links again once its partner sends it again.
    """
    crash_point("link:start")
    ws = load_workspace(workspace)
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
        state.con.execute(
            "DELETE FROM crosswalk_snapshots WHERE period = ?", [period]
        )
        state.con.execute(
            "INSERT INTO crosswalk_snapshots SELECT ?, ?, record_key, person_id FROM crosswalk",
            [period, run_id],
        )
    summary = {
        "records": len(crosswalk),
        "persons": int(crosswalk["person_id"].nunique()),
        "pairs": candidate_count,
        "matches": int((pairs["match_class"] == "match").sum()) if len(pairs) else 0,
        "possible": len(review),
        "id_events": len(history),
    }
    if current_fp is not None:
        summary.update(_rotation_counts(versions, period, current_fp, crosswalk, previous,
                                        len(kept)))
    crash_point("link:end")
    get_run_logger().info("linked %s", summary)
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


@task(name="publish", retries=2, retry_delay_seconds=[1, 5], persist_result=False,
      cache_policy=NO_CACHE)
def publish_release(workspace: str, run_id: str, code_version: str) -> dict[str, int]:
    """Write the de-identified release and swap it in atomically."""
    crash_point("publish:start")
    ws = load_workspace(workspace)
    with StateStore(ws.state_db) as state:
        inputs = PublishInputs(
            crosswalk=state.crosswalk(),
            records=state.latest_records(ws.fingerprint_or_none()),
            record_periods=state.record_periods(),
            partners={p.partner_id: p.name or p.partner_id for p in ws.partners.values()},
            id_history=state.id_history(),
            run_id=run_id,
            periods=sorted(state.processed_periods()),
            code_version=code_version,
            linkage_spec=SPEC_VERSION,
            encoding_schema=load_encoding_schema().id,
            events=load_event_rows(state),
            small_cell_threshold=ws.small_cell_threshold,
            match_records=state.token_records(WAGE_MATCH_TOKENS),
        )
    counts = publish(inputs, ws.published_db)
    crash_point("publish:replaced")
    write_report(ws.published_db, ws.published_db.parent / "report.html")
    get_run_logger().info("published %s", counts)
    return counts
