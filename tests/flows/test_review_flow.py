"""Clerical review through the hub's monthly flow (issue 18, docs/review.md).

Three months of seeded synthetic drops for three partners, plus a hand-made household: twin
sisters of one surname, dob, address and phone whose given names are one transposition apart
(the model merges them: a false merge), and one woman whose names changed (a nickname and a
new surname) and who moved (the model leaves her two records apart). The analyst decides the
twins `distinct` and the woman's records `match` from the command line; month 2 splits and
merges them, the ID history says which decision did it, and after a key rotation month 3
(re-encoded under the new key) keeps both. Nothing here is a real person.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from keys import SharedSecret
from pipelines.cli import app
from pipelines.ingest.encoded import encode_file, write_encoded
from pipelines.orchestration.flows import run_workspace
from pipelines.state import StateStore
from pipelines.synthetic.participants import generate
from pipelines.workspace import init_workspace, load_workspace

runner = CliRunner()
PARTNERS = ("workforce_board", "youth_dept", "community_college")
PERIODS = ("2026-09", "2026-10", "2026-11")
AS_OF = "2026-12-20"
_HOME = {"last_name": "Wojtaszek", "date_of_birth": "2007-03-14",
         "street_address": "41 Ledyard St", "city": "Hartford", "state": "CT", "zip": "06114",
         "sex": "F", "phone": "8605550163"}
EXTRA = {
    "youth_dept": [{**_HOME, "partner_record_id": "Y-TW1", "first_name": "Kristen"}],
    "community_college": [
        {**_HOME, "partner_record_id": "C-TW2", "first_name": "Kirsten"},
        {"partner_record_id": "C-MV2", "first_name": "Dee", "last_name": "Quintavos",
         "date_of_birth": "1999-07-08", "street_address": "77 Farmington Ave",
         "city": "West Hartford", "state": "CT", "zip": "06119", "sex": "F",
         "phone": "8605550111"}],
    "workforce_board": [
        {"partner_record_id": "W-MV1", "first_name": "Deverilla", "last_name": "Parnashke",
         "date_of_birth": "1999-07-08", "street_address": "9 Elm St", "city": "Hartford",
         "state": "CT", "zip": "06105", "sex": "F", "email": "deverilla.p@example.org"}],
}
TWINS = ("youth_dept:Y-TW1", "community_college:C-TW2")
RENAMED = ("workforce_board:W-MV1", "community_college:C-MV2")
VALUES = ["Kristen", "Kirsten", "Wojtaszek", "WOJTASZEK", "Ledyard", "LEDYARD", "2007-03-14",
          "8605550163", "Deverilla", "Parnashke", "Quintavos", "Farmington", "1999-07-08",
          "deverilla.p@example.org", "8605550111"]


@pytest.fixture(scope="module")
def background(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("review-synthetic")
    generate(out, seed=11, persons=120, periods=list(PERIODS))
    return out


def _drop(root: Path, background: Path, period: str) -> None:
    """The partners' extracts of one month with the hand-made records appended."""
    for partner in PARTNERS:
        source = background / "landing" / partner / period / "participants.csv"
        target = root / "landing" / partner / period / "participants.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        with source.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
            header = list(rows[0])
        rows += [{c: extra.get(c, "") for c in header} for extra in EXTRA[partner]]
        with target.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)


def _state(root: Path) -> tuple[dict[str, str], pd.DataFrame, pd.DataFrame]:
    with StateStore(load_workspace(root).state_db) as state:
        crosswalk = state.crosswalk()
        history = state.id_history()
        versions = state.records_by_key()
    return (dict(zip(crosswalk["record_key"], crosswalk["person_id"], strict=True)),
            history, versions)


def _cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_distinct_splits_a_false_merge_and_match_joins_across_months_and_a_key_rotation(
        tmp_path: Path, prefect_harness, background: Path) -> None:
    root = tmp_path / "hub"
    init_workspace(root, list(PARTNERS), key_id="hub-a")
    ws = str(root)

    # -- month 1: the model merges the twins and leaves the renamed woman apart ---------------
    _drop(root, background, PERIODS[0])
    run_workspace(root, as_of=AS_OF, seed=3)
    person, _, _ = _state(root)
    assert person[TWINS[0]] == person[TWINS[1]]  # the false merge
    assert person[RENAMED[0]] != person[RENAMED[1]]
    twins_person = person[TWINS[0]]

    # the review list of a record: its pairs with their waterfalls, never a value
    listing = _cli("review", "list", "--workspace", ws, "--record", TWINS[0])
    pair = re.search(r"^(R[0-9A-F]{12})  \+\d", listing, re.M).group(1)
    assert f"{TWINS[0]}  ~  {TWINS[1]}" in listing or f"{TWINS[1]}  ~  {TWINS[0]}" in listing
    assert "household" in listing and "agree" in listing
    as_json = _cli("review", "list", "--workspace", ws, "--record", TWINS[0], "--format", "json")
    for text in (listing, as_json):
        assert not [v for v in VALUES if v.lower() in text.lower()]
        assert not re.search(r"[0-9a-f]{64}", text)  # no token

    # -- the analyst decides: the twins are two people, the renamed woman is one --------------
    out = _cli("review", "decide", pair, "distinct", "--workspace", ws, "--by", "analyst-1")
    assert "D00001" in out and "distinct" in out
    out = _cli("review", "decide", RENAMED[0], RENAMED[1], "match", "--workspace", ws,
               "--by", "analyst-1")
    assert "D00002" in out
    # a contradicting decision is refused with the decisions named
    result = runner.invoke(app, ["review", "decide", TWINS[0], RENAMED[1], "match",
                                 "--workspace", ws])
    assert result.exit_code == 0, result.output  # joins nothing decided distinct: allowed
    result = runner.invoke(app, ["review", "decide", TWINS[1], RENAMED[0], "match",
                                 "--workspace", ws])
    assert result.exit_code == 1 and "contradicting decisions" in result.output
    assert "D00001" in result.output
    _cli("review", "decide", TWINS[0], RENAMED[1], "unsure", "--workspace", ws)  # withdrawn

    # -- month 2: the split and the merge happen, and the ID history says why -----------------
    _drop(root, background, PERIODS[1])
    summary = run_workspace(root, as_of=AS_OF, seed=3)
    link = summary["periods"][0]["link"]
    assert (link["review_cannot_link"], link["review_must_link"]) == (1, 1)
    person, history, _ = _state(root)
    assert person[TWINS[0]] != person[TWINS[1]]
    assert twins_person in (person[TWINS[0]], person[TWINS[1]])  # one part keeps the ID
    assert person[RENAMED[0]] == person[RENAMED[1]]
    split = history[(history["event"] == "split_from")
                    & (history["related_person_id"] == twins_person)]
    assert len(split) == 1 and split["reason"].iloc[0].startswith(
        "review decision D00001 (distinct)")
    merged = history[history["event"] == "merged_into"]
    merged = merged[merged["reason"].str.startswith("review decision D00002 (match)")]
    assert len(merged) == 1 and merged["related_person_id"].iloc[0] == person[RENAMED[0]]
    after_month_2 = {k: person[k] for k in (*TWINS, *RENAMED)}
    with StateStore(load_workspace(root).state_db) as state:
        reasons = state.crosswalk().set_index("record_key")["cluster_reason"]
    assert reasons[TWINS[0]] == reasons[TWINS[1]] == "review:cannot_link"
    assert reasons[RENAMED[0]] == "review:must_link"

    # -- a key rotation: month 3 is encoded under the new key and linked again ----------------
    _cli("keys", "rotate", "--workspace", ws, "--key-id", "hub-b")
    new_fp = load_workspace(root).expected_fingerprint()
    _drop(root, background, PERIODS[2])
    run_workspace(root, as_of=AS_OF, seed=3)
    person, history, versions = _state(root)
    month3 = versions[(versions["period"] == PERIODS[2])
                      & versions["record_key"].isin([*TWINS, *RENAMED])]
    assert set(month3["key_fingerprint"]) == {new_fp} and len(month3) == 4
    assert {k: person[k] for k in (*TWINS, *RENAMED)} == after_month_2  # kept, same IDs

    # the restricted ID history still holds both events, once each
    assert (history["reason"].str.startswith("review decision D00001").sum(),
            history["reason"].str.startswith("review decision D00002").sum()) == (1, 1)


def test_a_packet_for_a_partner_that_encodes_holds_no_value_token_or_filter(
        tmp_path: Path, prefect_harness, background: Path) -> None:
    root = tmp_path / "hub"
    init_workspace(root, list(PARTNERS), key_id="hub-a")
    secret: SharedSecret = load_workspace(root).load_secret()
    _drop(root, background, PERIODS[0])
    # community_college encodes on its own machine: only the encoded Parquet reaches the hub
    plain = root / "landing" / "community_college" / PERIODS[0] / "participants.csv"
    outside = tmp_path / "college" / "participants.csv"
    outside.parent.mkdir()
    plain.rename(outside)
    drop = encode_file(outside, partner_id="community_college", secret=secret,
                       period=PERIODS[0], as_of=pd.Timestamp(AS_OF).date())
    write_encoded(drop, plain.parent / "participants.encoded.parquet")
    run_workspace(root, as_of=AS_OF, seed=3)
    ws = str(root)

    out = _cli("review", "sample", "--workspace", ws, "--size", "60", "--seed", "5")
    assert "sample S001" in out
    packet = tmp_path / "packet.csv"
    out = _cli("review", "packet", "--workspace", ws, "--partner", "community_college",
               "-o", str(packet))
    frame = pd.read_csv(packet, dtype=str, keep_default_na=False)
    assert len(frame) > 0, out
    assert list(frame.columns[:4]) == ["pair_id", "your_record_id", "other_partner",
                                       "match_weight"]
    assert list(frame.columns[-2:]) == ["decision", "decided_by"]
    categories = frame[[c for c in frame.columns if c.startswith("agreement_")]]
    assert set(categories.to_numpy().ravel()) <= {"agree", "close", "disagree", "missing"}
    # its own record ids only; the other side is named by partner, never by record
    own = pd.read_csv(outside, dtype=str)["partner_record_id"]
    assert set(frame["your_record_id"]) <= set(own)
    # the other record's id only where it is the partner's own too (a possible duplicate)
    theirs = frame["other_partner"] != "community_college"
    assert (frame.loc[theirs, "your_other_record_id"] == "").all()
    assert set(frame.loc[~theirs, "your_other_record_id"]) <= set(own)
    assert set(frame["other_partner"]) <= set(PARTNERS)
    text = packet.read_text()
    raw = pd.concat([pd.read_csv(background / "landing" / p / PERIODS[0] /
                                 "participants.csv", dtype=str) for p in PARTNERS])
    values = {v for c in ("first_name", "last_name", "date_of_birth", "ssn", "phone",
                          "email", "street_address") for v in raw[c].dropna() if len(v) >= 4}
    assert not [v for v in values | set(VALUES) if v in text]
    assert not re.search(r"[0-9a-f]{32,}", text)  # no token, no filter as hex
    with StateStore(load_workspace(root).state_db) as state:
        records = state.latest_records(secret.fingerprint)
    blobs = [bytes(v) for c in records.columns if c.startswith(("bf_", "ts_"))
             for v in records[c].dropna()]
    data = packet.read_bytes()
    assert not [b for b in blobs if len(b) >= 8 and b in data]

    # the partner settles its pairs and sends the packet back: imported as decisions
    frame.loc[:, "decision"] = "match"
    frame.loc[:, "decided_by"] = "college-registrar"
    frame.to_csv(packet, index=False)
    out = _cli("review", "import", str(packet), "--workspace", ws)
    assert f"imported {len(frame)} decisions" in out
    with StateStore(load_workspace(root).state_db) as state:
        decided = state.decisions()
    assert set(decided["decided_by"]) == {"college-registrar"}
    assert set(decided["source"]) == {"import:packet.csv"}
    report = json.loads(_cli("review", "accuracy", "--workspace", ws, "--format", "json"))
    assert report["sample_id"] == "S001" and report["labelled"] >= 1
