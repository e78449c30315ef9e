"""Ingest one drop: read -> validate -> normalize -> encode (or event rows) -> store.

Every function takes the drop's `DropContext` (loaded once per drop) and is free of Prefect;
`pipelines.orchestration.tasks` wraps each in a task that never persists its result (raw PII
passes through here in memory only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import pandas as pd

from keys import KeyMismatchError, SharedSecret, generate_secret
from linkage.encode import encode_participants, load_encoding_schema
from linkage.normalize import normalize_participants
from pipelines import helpers
from pipelines.faults import crash_point
from pipelines.ingest import (
    EncodedBatch,
    ReadResult,
    ValidationOutcome,
    contract_version,
    encoded_batch,
    issues_frame,
    read_table,
    validate_table,
    wait_partner_reports,
    warm_up_renderer,
    write_partner_report,
)
from pipelines.ingest.encoded import EncodedDropError, read_encoded_drop
from pipelines.ingest.events import restricted_rows
from pipelines.state import StateStore, encrypt_quarantine, now_utc
from pipelines.state.store import held_open
from pipelines.steps.context import DropContext, RunContext


@contextlib.contextmanager
def stores_checkpointed_once(run: RunContext) -> Iterator[Callable[[], None]]:
    """While a period's drops are ingested in this process, their stores are folded into the
    state file by one checkpoint, not one per drop (`state.store.held_open`): when the block
    calls the function it is given, or else as it ends. With Dask workers (`[runner] kind =
    "dask"`) each store checkpoints its own, as before, and the function does nothing."""
    if not run.ws.ingests_in_process:
        yield lambda: None
        return
    with held_open(run.ws.state_db) as checkpoint:
        yield checkpoint


class EncodedDropRefused(Exception):
    """A partner-side encoded file was refused (wrong key, schema or shape); no PII inside."""


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
    why: str = "new"  # new | corrected | map_changed | contract_changed | encoding_changed |
    #                   reprocess_requested
    reason_code: str | None = None  # the vocabulary's code of a file-level refusal
    reason_row: int = 0
    reason_field: str = ""

    @classmethod
    def for_drop(cls, ctx: DropContext, why: str = "new") -> DropOutcome:
        """A new outcome for the drop, `accepted` until a stage says otherwise."""
        ref = ctx.ref
        return cls(ref.partner_id, ref.period, ref.dataset, ctx.rel_path, ctx.sha256,
                   status="accepted", why=why)

    def count(self, read: int, accepted: int, quarantined: int) -> None:
        self.rows_read, self.rows_accepted, self.rows_quarantined = read, accepted, quarantined

    def reject(self, reason: str, *, code: str | None = None, row: int | None = None,
               field: str | None = None) -> None:
        self.status, self.reason = "rejected", reason
        self.reason_code, self.reason_row, self.reason_field = code, row or 0, field or ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_drop(ctx: DropContext) -> ReadResult:
    """Read one dropped file into strings, applying the partner's column and value maps, its
    sheet choice and the workspace's intake limits."""
    return read_table(ctx.ref.path, column_map=ctx.partner.columns,
                      value_map=ctx.partner.values, dataset=ctx.ref.dataset,
                      sheet=ctx.partner.sheet, limits=ctx.ws.limits, source_name=ctx.rel_path)


def validate_drop(ctx: DropContext, frame: pd.DataFrame) -> ValidationOutcome:
    """Validate against the dataset's contract: accept or quarantine every row."""
    ref = ctx.ref
    return validate_table(
        frame, ref.dataset, partner_id=ref.partner_id, period=ref.period, as_of=ctx.run.as_of,
        age_range=ctx.partner.age_range, max_quarantine_share=ctx.ws.max_quarantine_share,
        source_name=ctx.rel_path,
    )


def normalize(ctx: DropContext, accepted: pd.DataFrame) -> pd.DataFrame:
    """Normalize identifiers (names, dates, SSN, phone, email, address); the helper process,
    when there is one, standardizes half of the distinct addresses and phones, and those an
    earlier file of the run had are taken from the run's memo."""
    return normalize_participants(accepted, as_of=ctx.run.as_of, executor=helpers.helper(),
                                  memo=ctx.run.memo)


def warm_up_encoding() -> None:
    """Load now what a run's first normalize and encode load on first use (numba's cached
    kernels, the address, phone and name libraries: about 1 s), by encoding one made-up
    record under a throwaway key; nothing is kept. For time a command would otherwise spend
    waiting (its Prefect server starting)."""
    from pipelines.steps.compile import made_up_records

    made_up = made_up_records().drop(columns=["partner_id"]).head(1)
    normalized = normalize_participants(made_up, as_of=date(2026, 1, 31))
    encode_participants(normalized, SharedSecret("warm-up", generate_secret()),
                        load_encoding_schema())


def warm_up() -> None:
    """Start the helper process and load what the first encode loads (a run's warm-up, for
    the time its Prefect server takes to start)."""
    warm_up_helper()
    warm_up_encoding()


def warm_up_helper() -> None:
    """Start the helper process and its imports now, while the first drops are read."""
    pool = helpers.helper()
    if pool is not None:
        pool.submit(warm_up_renderer)


def encode(ctx: DropContext, normalized: pd.DataFrame, accepted: pd.DataFrame) -> EncodedBatch:
    """Keyed tokens and Bloom filters with lineage and profile columns; no raw PII."""
    schema = load_encoding_schema()
    encoded = encode_participants(normalized, ctx.secret, schema)
    batch = encoded_batch(encoded, accepted, key_fingerprint=ctx.secret.fingerprint,
                          encoding_schema=schema.id)
    return batch.with_lineage(partner_id=ctx.ref.partner_id, period=ctx.ref.period,
                              sha256=ctx.sha256, profile=accepted)


def event_rows(ctx: DropContext, accepted: pd.DataFrame) -> pd.DataFrame:
    """Rows of an event dataset for the restricted state (wage identities become tokens)."""
    tokens = None
    employer_hash_key = None
    if ctx.ref.dataset == "wages":
        tokens = encode_participants(normalize_participants(accepted, as_of=ctx.run.as_of),
                                     ctx.secret, load_encoding_schema())
        employer_hash_key = ctx.secret.subkey("employer/v1")
    return restricted_rows(accepted, dataset=ctx.ref.dataset, partner_id=ctx.ref.partner_id,
                           period=ctx.ref.period, sha256_hex=ctx.sha256, tokens=tokens,
                           employer_hash_key=employer_hash_key)


def wait_reports() -> int:
    """Wait until every partner report this process handed to the helper is written."""
    return wait_partner_reports()


def read_encoded(ctx: DropContext) -> EncodedBatch:
    """Read a partner-side encoded drop, refusing one made under another key or schema.

    During a key rotation's overlap a drop under a previous key (`previous_key_ids`) is
    accepted too; its records keep their key's fingerprint (docs/keys.md, "Rotation").

    Raises:
        EncodedDropRefused: another key, schema or partner, or a malformed file.
    """
    ws = ctx.ws
    try:
        batch = read_encoded_drop(ctx.ref.path, expected_fingerprint=ws.expected_fingerprint(),
                                  expected_schema=load_encoding_schema(),
                                  expected_partner=ctx.ref.partner_id,
                                  previous_fingerprints=ws.previous_fingerprints())
    except (KeyMismatchError, EncodedDropError) as exc:
        raise EncodedDropRefused(str(exc)) from None
    return batch.with_lineage(partner_id=ctx.ref.partner_id, period=ctx.ref.period,
                              sha256=ctx.sha256)


def store_drop(ctx: DropContext, outcome: DropOutcome, *, batch: EncodedBatch | None = None,
               events: pd.DataFrame | None = None,
               validation: ValidationOutcome | None = None) -> DropOutcome:
    """Record the file in the ledger, its row issues, encrypted quarantine and stored rows.

    One `StateStore` block: the ledger row, row issues and records appear together or not at
    all.
    """
    crash_point("store-drop:start")
    ws = ctx.ws
    fingerprint = batch.key_fingerprint if batch is not None else None
    schema_id = batch.encoding_schema if batch is not None else None
    with StateStore(ws.state_db) as state:
        # one accepted file per key: the two files of a rotation's overlap do not replace
        # each other
        previous = state.current_file(outcome.partner_id, outcome.period, outcome.dataset,
                                      key_fingerprint=fingerprint)
        if validation is not None and len(validation.quarantined):
            encrypt_quarantine(ws, validation.quarantined, partner_id=outcome.partner_id,
                               period=outcome.period, sha=outcome.sha256, secret=ctx.secret)
        if outcome.status == "accepted":
            if previous and previous != outcome.sha256:
                state.supersede(previous, outcome.sha256, outcome.partner_id, outcome.period,
                                outcome.dataset)
                outcome.replaced = previous
            if batch is not None:
                state.store_records(batch.frame)
            elif events is not None:
                state.store_event_rows(outcome.dataset, events)
        if validation is None and outcome.reason_code:  # refused before validation
            state.record_issues(outcome.sha256, pd.DataFrame([{
                "source_row": outcome.reason_row, "field": outcome.reason_field,
                "rule": outcome.reason_code, "severity": "error",
                "action": "file_rejected"}]))
        if validation is not None:
            issues = issues_frame(validation)
            state.record_issues(outcome.sha256, issues)
            if len(issues) and validation.check_results is not None:
                # The report sent back to the partner: rules and row numbers, never values
                # (its HTML page may still be rendering: `wait_partner_reports`).
                write_partner_report(
                    validation, ws.reports_dir / outcome.partner_id /
                    outcome.period / outcome.dataset, title=outcome.rel_path)
        earlier = state.file_entry(outcome.sha256, outcome.partner_id, outcome.period,
                                   outcome.dataset)
        if earlier is not None:  # the same file again: keep what its ledger row said
            state.record_reprocessing({
                "run_id": ctx.run.run_id, "sha256": outcome.sha256,
                "partner_id": outcome.partner_id, "period": outcome.period,
                "dataset": outcome.dataset, "because": outcome.why,
                "previous_run_id": earlier["run_id"],
                "previous_processed_at": earlier["processed_at"],
                "previous_contract": earlier["contract"],
                "previous_reading_fingerprint": earlier["reading_fingerprint"]})
        state.record_file({
            "sha256": outcome.sha256, "partner_id": outcome.partner_id,
            "period": outcome.period, "dataset": outcome.dataset,
            "rel_path": outcome.rel_path, "size_bytes": ctx.ref.path.stat().st_size,
            "status": outcome.status, "reason": outcome.reason,
            "rows_read": outcome.rows_read, "rows_accepted": outcome.rows_accepted,
            "rows_quarantined": outcome.rows_quarantined,
            "contract": contract_version(outcome.dataset),
            "encoding_schema": schema_id, "key_fingerprint": fingerprint,
            "code_version": ctx.run.code_version, "run_id": ctx.run.run_id,
            "processed_at": now_utc(),
            "reading_fingerprint": None if ctx.ref.encoded else
            ctx.partner.reading_fingerprint(),
            "processed_because": outcome.why,
        })
    crash_point("store-drop:end")
    return outcome
