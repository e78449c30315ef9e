"""The steps run without Prefect: one drop through read -> validate -> encode -> store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from keys import SharedSecret, write_secret_file
from pipelines.ingest import EncodedBatch
from pipelines.records import LINEAGE_COLUMNS, PROFILE_COLUMNS
from pipelines.state import StateStore
from pipelines.steps import ingest
from pipelines.steps.context import RunContext
from pipelines.workspace import init_workspace

AS_OF = date(2026, 11, 22)
KEY = bytes(range(32))
CSV = ("partner_record_id,first_name,last_name,date_of_birth,race\n"
       "Y-1,Ann,Lee,2008-01-02,asian\n"
       ",Bo,,2008-03-04,white\n"  # no partner_record_id: unusable as a row, quarantined
       "Y-3,Cy,Dee,2007-05-06,\n")


@pytest.fixture
def run(tmp_path: Path) -> RunContext:
    root = tmp_path / "w"
    write_secret_file(root / "secrets" / "k1.key", KEY, key_id="k1")
    ws = init_workspace(root, ["youth_dept"], key_id="k1")
    drop = ws.landing / "youth_dept" / "2026-10" / "participants.csv"
    drop.parent.mkdir(parents=True)
    drop.write_text(CSV)
    return RunContext(ws, "run-test", AS_OF, "pathlink test")


def test_one_drop_through_the_steps_without_prefect(run: RunContext) -> None:
    ctx = run.drop("youth_dept/2026-10/participants.csv", "ab" * 32)
    assert (ctx.ref.partner_id, ctx.ref.period, ctx.ref.dataset) == (
        "youth_dept", "2026-10", "participants")
    outcome = ingest.DropOutcome.for_drop(ctx)
    validation = ingest.validate_drop(ctx, ingest.read_drop(ctx).frame)
    outcome.count(validation.counts["read"], validation.counts["accepted"],
                  validation.counts["quarantined"])
    batch = ingest.encode(ctx, ingest.normalize(ctx, validation.accepted), validation.accepted)

    secret = SharedSecret("k1", KEY)
    assert batch.key_fingerprint == secret.fingerprint == ctx.secret.fingerprint
    assert batch.encoding_schema == "pathlink-encoding/3"
    frame = batch.frame
    assert tuple(frame.columns[:6]) == LINEAGE_COLUMNS
    assert tuple(frame.columns[-15:-2]) == PROFILE_COLUMNS
    assert list(frame["record_key"]) == ["youth_dept:Y-1", "youth_dept:Y-3"]
    assert list(frame["source_row"]) == [2, 4]
    assert list(frame["race"]) == ["asian", None]
    assert not frame.attrs.get("rows_read")  # provenance rides in the batch, not in attrs

    ingest.store_drop(ctx, outcome, batch=batch, validation=validation)
    with StateStore(run.ws.state_db) as state:
        records = state.latest_records(secret.fingerprint)
        files = state.status()
    assert list(records["record_key"]) == ["youth_dept:Y-1", "youth_dept:Y-3"]
    assert set(records["key_fingerprint"]) == {secret.fingerprint}
    assert files[["status", "rows_read", "rows_accepted", "rows_quarantined"]].values.tolist() \
        == [["accepted", 3, 2, 1]]
    # the quarantined row is kept encrypted, never in clear
    (quarantined,) = run.ws.quarantine_dir.rglob("*.bin")
    # (needles long enough that random ciphertext cannot hold them by chance: two bytes
    # such as b"Bo" turn up in a ~1 KB ciphertext a few runs in a hundred)
    sealed = quarantined.read_bytes()
    assert b"2008-03-04" not in sealed and b",Bo," not in sealed and b'"Bo"' not in sealed


def test_both_kinds_of_drop_get_the_same_lineage_layout() -> None:
    """Raw drops encoded at the hub and partner-encoded files are stamped by one function."""
    encoded = pd.DataFrame({"partner_record_id": ["A", "B"], "source_row": [2, 3],
                            "tok_t1": ["x" * 64, None], "birth_year": [1990, None]})
    batch = EncodedBatch(encoded, "f" * 32, "pathlink-encoding/3", 2, 2, 0)
    stamped = batch.with_lineage(partner_id="p", period="2026-10", sha256="s")
    assert list(stamped.frame.columns) == [
        *LINEAGE_COLUMNS, "tok_t1", "birth_year", *PROFILE_COLUMNS, "key_fingerprint",
        "encoding_schema"]
    assert stamped.frame["record_key"].tolist() == ["p:A", "p:B"]
    assert stamped.frame["source_row"].dtype == "int64"
    assert set(stamped.frame["key_fingerprint"]) == {"f" * 32}
    assert stamped.rows_read == 2 and batch.frame is encoded  # the input batch is unchanged


def test_a_stage_error_names_the_stage_and_file_never_the_value(run: RunContext) -> None:
    from pipelines.ingest import FileRejected
    from pipelines.orchestration.tasks import StageError, pii_safe

    ctx = run.drop("youth_dept/2026-10/participants.csv", "ab" * 32)

    @pii_safe("encode")
    def leaky(ctx, frame):
        raise ValueError("could not encode 'Ann Lee', born 2008-01-02")

    with pytest.raises(StageError) as info:
        leaky(ctx, frame=None)
    assert str(info.value) == ("encode failed on youth_dept/2026-10/participants.csv: "
                               "ValueError (details withheld: may contain personal data)")
    assert info.value.__cause__ is None and info.value.__suppress_context__

    @pii_safe("read")
    def refused(ctx):
        raise FileRejected("youth_dept/2026-10/participants.csv", "the file is empty")

    with pytest.raises(FileRejected, match="the file is empty"):  # our messages pass as they are
        refused(ctx)
