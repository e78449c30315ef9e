"""The hub ingests partner-side encoded drops like raw ones, and refuses another key's."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd

from keys import SharedSecret, generate_secret
from pipelines.ingest.encoded import encode_file, write_encoded
from pipelines.orchestration.flows import run_workspace
from pipelines.state import StateStore
from pipelines.workspace import init_workspace, load_workspace

AS_OF = "2026-11-22"


def test_encoded_drop_links_with_raw_drops_and_wrong_key_is_refused(
        tmp_path: Path, prefect_harness, synthetic_drops: Path) -> None:
    root = tmp_path / "hub"
    ws = init_workspace(root, ["workforce_board", "youth_dept", "civic_assoc"], key_id="hub")
    period = "2026-09"
    raw = synthetic_drops / "landing"
    shutil.copytree(raw / "workforce_board" / period, root / "landing" / "workforce_board" /
                    period)
    # youth_dept encodes on its own machine with the shared key; only the Parquet travels.
    drop = encode_file(raw / "youth_dept" / period / "participants.csv", partner_id="youth_dept",
                       secret=ws.load_secret(), period=period, as_of=date(2026, 11, 22))
    target = root / "landing" / "youth_dept" / period / "participants.encoded.parquet"
    target.parent.mkdir(parents=True)
    write_encoded(drop, target)
    # civic_assoc encoded under a key that is not the collaborative's.
    stranger = SharedSecret("other", generate_secret())
    wrong = encode_file(raw / "civic_assoc" / period / "participants.csv",
                        partner_id="civic_assoc", secret=stranger, period=period,
                        as_of=date(2026, 11, 22))
    wrong_target = root / "landing" / "civic_assoc" / period / "participants.encoded.parquet"
    wrong_target.parent.mkdir(parents=True)
    write_encoded(wrong, wrong_target)

    summary = run_workspace(root, as_of=AS_OF, seed=5)
    drops = {d["partner_id"]: d for p in summary["periods"] for d in p["drops"]}
    assert drops["youth_dept"]["status"] == "accepted"
    assert drops["youth_dept"]["rows_accepted"] > 0
    assert drops["civic_assoc"]["status"] == "rejected"
    assert "fingerprint" in drops["civic_assoc"]["reason"]

    with StateStore(load_workspace(root).state_db) as state:
        crosswalk = state.crosswalk()
    truth = pd.read_csv(synthetic_drops / "truth" / "participants_truth.csv", dtype=str)
    truth = truth[truth["period"] == period]
    truth["record_key"] = truth["partner_id"] + ":" + truth["partner_record_id"]
    linked = crosswalk.merge(truth[["record_key", "true_person_id"]], on="record_key")
    assert set(linked["partner_id"]) == {"workforce_board", "youth_dept"}
    # persons the truth says both partners served are found across the raw/encoded boundary
    both = linked.groupby("true_person_id")["partner_id"].nunique()
    shared_truth = set(both[both == 2].index)
    assert shared_truth
    found = linked[linked["true_person_id"].isin(shared_truth)].groupby(
        "true_person_id")["person_id"].nunique()
    assert (found == 1).mean() >= 0.9
