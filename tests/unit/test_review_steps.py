"""Clerical review steps without Prefect: drops ingested and linked by the steps, then the
list, decisions (command and CSV), packets, samples, accuracy, the pages and `status`.

The drops are hand-made: nothing here is a real person. One first name carries markup, so
the side-by-side page must escape it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import tomli_w

from keys import write_secret_file
from pipelines.state import StateStore
from pipelines.steps import ingest, review, review_pages
from pipelines.steps.context import RunContext
from pipelines.steps.link import link_spec, link_workspace
from pipelines.steps.run import open_run
from pipelines.steps.status import status_report
from pipelines.workspace import WorkspaceError, init_workspace, load_workspace

AS_OF = date(2026, 11, 22)
KEY = bytes(range(32))
HEADER = ("partner_record_id,first_name,last_name,date_of_birth,sex,street_address,city,state,"
          "zip,phone\n")
YOUTH = HEADER + (
    "Y-1,Kristen,Wojtaszek,2007-03-14,F,41 Ledyard St,Hartford,CT,06114,8605550163\n"
    "Y-2,Marco,Oyelaran,2006-02-11,M,3 Vine St,Hartford,CT,06112,8605550170\n"
    "Y-3,\"Ann<script>alert(1)</script>\",Brisbee,2008-05-06,F,5 Oak Ave,Hartford,CT,06106,\n"
    "Y-4,Lucia,Ferreira,2005-09-30,F,12 Park Rd,Hartford,CT,06106,8605550199\n")
COLLEGE = HEADER + (
    "C-1,Kirsten,Wojtaszek,2007-03-14,F,41 Ledyard St,Hartford,CT,06114,8605550163\n"
    "C-2,Marco,Oyelaran,2006-02-11,M,3 Vine Street,Hartford,CT,06112,\n"
    "C-3,Ann,Brisbee,2008-05-06,F,5 Oak Ave,Hartford,CT,06106,\n"
    "C-5,Tomasz,Grabowski,1999-01-01,M,8 Ash St,Hartford,CT,06105,8605550111\n")
VALUES = ["Kristen", "Kirsten", "Wojtaszek", "Ledyard", "2007-03-14", "8605550163", "Marco",
          "Oyelaran", "Brisbee", "Ferreira", "Grabowski"]


def _ingest(run: RunContext, rel: str) -> None:
    from pipelines.ingest.landing import sha256_file

    ctx = run.drop(rel, sha256_file(run.ws.landing / rel))
    outcome = ingest.DropOutcome.for_drop(ctx)
    validation = ingest.validate_drop(ctx, ingest.read_drop(ctx).frame)
    outcome.count(validation.counts["read"], validation.counts["accepted"],
                  validation.counts["quarantined"])
    batch = ingest.encode(ctx, ingest.normalize(ctx, validation.accepted), validation.accepted)
    ingest.store_drop(ctx, outcome, batch=batch, validation=validation)


@pytest.fixture(scope="module")
def linked_once(tmp_path_factory) -> Path:
    """One workspace with both drops ingested and linked by the steps (copied per test)."""
    root = tmp_path_factory.mktemp("review-steps") / "w"
    write_secret_file(root / "secrets" / "k1.key", KEY, key_id="k1")
    ws = init_workspace(root, ["youth_dept", "community_college"], key_id="k1")
    for partner, text in (("youth_dept", YOUTH), ("community_college", COLLEGE)):
        drop = ws.landing / partner / "2026-10" / "participants.csv"
        drop.parent.mkdir(parents=True)
        drop.write_text(text)
    run = RunContext(ws, "run-1", AS_OF, "pathlink test")
    for partner in ("youth_dept", "community_college"):
        _ingest(run, f"{partner}/2026-10/participants.csv")
    link_workspace(run, "2026-10", seed=1)
    return root


@pytest.fixture
def linked(linked_once: Path, tmp_path: Path) -> RunContext:
    root = tmp_path / "w"
    shutil.copytree(linked_once, root)
    return RunContext(load_workspace(root), "run-1", AS_OF, "pathlink test")


def _persons(ws) -> dict[str, str]:
    with StateStore(ws.state_db) as state:
        cw = state.crosswalk()
    return dict(zip(cw["record_key"], cw["person_id"], strict=True))


def test_thresholds_live_in_pathlink_toml(tmp_path: Path) -> None:
    root = tmp_path / "w"
    write_secret_file(root / "secrets" / "k1.key", KEY, key_id="k1")
    ws = init_workspace(root, ["youth_dept"], key_id="k1")
    assert (ws.match_weight_threshold, ws.possible_weight_threshold) == (-2.0, -6.0)
    config = root / "pathlink.toml"
    raw = __import__("tomllib").loads(config.read_text())
    raw["linkage"] = {"match_weight_threshold": 1.5, "possible_weight_threshold": -4}
    config.write_text(tomli_w.dumps(raw))
    fs = link_spec(load_workspace(root)).fellegi_sunter
    assert (fs.match_weight_threshold, fs.possible_weight_threshold) == (1.5, -4.0)
    for bad, message in (({"match_weight_threshold": "high"}, "must be a number"),
                         ({"possible_weight_threshold": 3, "match_weight_threshold": 1},
                          "must not be above"),
                         ({"match_threshold": 1}, r"unknown \[linkage\] setting")):
        raw["linkage"] = bad
        config.write_text(tomli_w.dumps(raw))
        with pytest.raises(WorkspaceError, match=message):
            load_workspace(root)
    raw.pop("linkage")  # without the table: the spec's thresholds
    config.write_text(tomli_w.dumps(raw))
    assert link_spec(load_workspace(root)).fellegi_sunter.match_weight_threshold == -2.0


@pytest.mark.slow
def test_decisions_split_and_join_at_the_next_link_and_a_quiet_run_applies_them(
        linked: RunContext) -> None:
    ws = linked.ws
    before = _persons(ws)
    assert before["youth_dept:Y-1"] == before["community_college:C-1"]  # the twins, merged
    assert before["youth_dept:Y-4"] != before["community_college:C-5"]
    listing = review.review_list(ws, record="youth_dept:Y-1")
    (twins,) = [p for p in listing["pairs"] if "community_college:C-1" in
                (p["record_key_l"], p["record_key_r"])]
    assert twins["match_class"] == "match" and twins["linked"]
    assert twins["waterfall"]["total"] == pytest.approx(twins["match_weight"])
    text = json.dumps(listing)
    assert not [v for v in VALUES if v in text]

    review.decide(ws, twins["pair_id"], "distinct", by="analyst")
    review.decide(ws, "youth_dept:Y-4", "match", other="community_college:C-5", by="analyst")
    with StateStore(ws.state_db) as state:
        assert state.decisions_since_link() == "2026-10"
    # a run with nothing new links the latest period again, so the decisions take effect
    plan = open_run(RunContext(ws, "run-2", AS_OF, "pathlink test"))
    assert plan.by_period == {"2026-10": []}
    summary = link_workspace(RunContext(ws, "run-2", AS_OF, "pathlink test"), "2026-10",
                             seed=1)
    assert (summary["review_cannot_link"], summary["review_must_link"]) == (1, 1)
    after = _persons(ws)
    assert after["youth_dept:Y-1"] != after["community_college:C-1"]
    assert after["youth_dept:Y-4"] == after["community_college:C-5"]
    with StateStore(ws.state_db) as state:
        assert state.decisions_since_link() is None
        history = state.id_history()
    assert history["reason"].str.startswith("review decision D00001 (distinct)").sum() == 1
    assert history["reason"].str.startswith("review decision D00002 (match)").sum() == 1
    # a later 'unsure' withdraws the decision: the model decides again
    review.decide(ws, twins["pair_id"], "unsure", by="analyst")
    link_workspace(RunContext(ws, "run-3", AS_OF, "pathlink test"), "2026-10", seed=1)
    assert _persons(ws)["youth_dept:Y-1"] == _persons(ws)["community_college:C-1"]


def test_imports_refuse_a_bad_row_naming_its_line_and_field(linked: RunContext,
                                                          tmp_path: Path) -> None:
    ws = linked.ws
    good = tmp_path / "decisions.csv"
    good.write_text("partner_id_l,partner_record_id_l,partner_id_r,partner_record_id_r,"
                    "decision,decided_by\n"
                    "youth_dept,Y-2,community_college,C-2,match,caseworker\n"
                    "youth_dept,Y-3,community_college,C-3,,\n")
    done = review.import_decisions(ws, good, by="analyst")
    assert (done["stored"], done["skipped_empty"]) == (1, 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("pair_id,decision\nR000000000000,maybe\n")
    with pytest.raises(WorkspaceError, match=r"bad.csv line 2, field decision"):
        review.import_decisions(ws, bad)
    bad.write_text("pair_id,decision\nR000000000000,match\n")
    with pytest.raises(WorkspaceError, match=r"bad.csv line 2, field pair_id: no pair"):
        review.import_decisions(ws, bad)
    bad.write_text("who,what\nx,y\n")
    with pytest.raises(WorkspaceError, match="no 'decision' column"):
        review.import_decisions(ws, bad)
    with StateStore(ws.state_db) as state:
        decided = state.decisions()
    assert decided[["decision", "decided_by", "source"]].values.tolist() == [
        ["match", "caseworker", "import:decisions.csv"]]


def test_sample_accuracy_packet_and_status(linked: RunContext, tmp_path: Path) -> None:
    ws = linked.ws
    drawn = review.draw_sample(ws, size=50, seed=2, by="analyst")
    assert drawn["sample_id"] == "S001" and drawn["size"] > 0
    assert sum(s["drawn"] for s in drawn["strata"]) == drawn["size"]
    assert review.accuracy_report(ws)["labelled"] == 0
    listing = review.review_list(ws, sample=True)
    twins = {"youth_dept:Y-1", "community_college:C-1"}  # the same number, yet two people
    for pair in listing["pairs"]:
        key = (pair["record_key_l"], pair["record_key_r"])
        same = key[0].split(":")[1][2:] == key[1].split(":")[1][2:] and set(key) != twins
        review.decide(ws, pair["pair_id"], "match" if same else "distinct", by="analyst")
    report = review.accuracy_report(ws, table=True)
    assert report["labelled"] == drawn["size"]
    precision = report["figures"][0]
    assert precision["measure"] == "precision" and precision["estimate"] < 1.0  # the twins
    assert report["threshold_table"]
    status = status_report(ws, as_of=AS_OF)["review"]
    assert status["accuracy"]["labelled"] == drawn["size"]
    assert status["decisions"]["distinct"] >= 1
    from pipelines.cli.workspace import status_compact

    text = status_compact(status_report(ws, as_of=AS_OF))
    assert "accuracy (95% intervals): precision at the match threshold" in text
    # the report's methods section: the figures and how many decided pairs they rest on
    from pipelines.warehouse.report import linkage_methods

    section = linkage_methods(review.report_accuracy(ws))
    assert "Methods: linkage accuracy" in section
    assert f"of which {drawn['size']} were\ndecided" in section
    assert f"{precision['estimate']:.3f} ({precision['low']:.3f} to" in section
    assert not [v for v in VALUES if v in section]
    assert "not been estimated" in linkage_methods(None)
    assert max(len(line) for line in text.splitlines()) <= 80
    # every pair is decided now: the packet is empty; undecide one to see it there
    review.decide(ws, listing["pairs"][0]["pair_id"], "unsure")
    out = review.write_packet(ws, "community_college", tmp_path / "p.csv", every=True)
    packet = pd.read_csv(out["path"], dtype=str, keep_default_na=False)
    assert len(packet) == 1 and packet["your_record_id"].iloc[0].startswith("C-")
    assert not [v for v in VALUES if v in (tmp_path / "p.csv").read_text()]
    # the plain partner's records are held at the hub: by default no packet pair
    assert review.write_packet(ws, "community_college", tmp_path / "q.csv")["pairs"] == 0
    with pytest.raises(WorkspaceError, match="not registered"):
        review.write_packet(ws, "nobody", tmp_path / "r.csv")


def test_pages_escape_everything_and_stay_restricted(linked: RunContext) -> None:
    ws = linked.ws
    pair = review.review_list(ws, record="youth_dept:Y-3")["pairs"][0]["pair_id"]
    shown = review_pages.show_pair(ws, pair)
    page = Path(shown["path"])
    assert page.parent == ws.state_dir / "review"
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert stat.S_IMODE(page.parent.stat().st_mode) == 0o700
    text = page.read_text()
    assert "Ann&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script" not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "Brisbee" in text  # the raw records are shown: that is the page's purpose
    assert not list(ws.published_db.parent.glob("*.html")) or all(
        "Brisbee" not in p.read_text() for p in ws.published_db.parent.glob("*.html"))
    chart = Path(review_pages.threshold_page(ws)["path"])
    assert stat.S_IMODE(chart.stat().st_mode) == 0o600
    assert "<svg" in chart.read_text() and not [v for v in VALUES if v in chart.read_text()]
    # a record whose drop left landing/ is not shown, and the page says why
    (ws.landing / "community_college" / "2026-10" / "participants.csv").unlink()
    again = review_pages.show_pair(ws, pair)
    assert again["why_not"] == {"community_college:C-3":
                                "community_college/2026-10/participants.csv is no longer in "
                                "landing/"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium (Debian) not installed")
def test_pages_render_in_headless_chromium(linked: RunContext, tmp_path: Path) -> None:
    ws = linked.ws
    review.draw_sample(ws, size=20, seed=1)
    pair = review.review_list(ws, record="youth_dept:Y-1")["pairs"][0]["pair_id"]
    for page in (review_pages.show_pair(ws, pair)["path"],
                 review_pages.threshold_page(ws)["path"]):
        shot = tmp_path / (Path(page).stem + ".png")
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1400",
             f"--screenshot={shot}", Path(page).as_uri()],
            check=True, capture_output=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # drawn, not blank


def test_gamma_profiles_equal_the_text_built_column_by_column() -> None:
    """The review pairs' profile text, written once per pattern, is what joining each pair's
    gammas one feature at a time gave (patterns repeated, one feature always missing)."""
    import numpy as np

    from pipelines.steps.link import _gamma_profiles

    rng = np.random.default_rng(3)
    features = ["given_name", "family_name", "dob", "ssn", "address"]
    patterns = rng.integers(-1, 4, (40, len(features)))
    patterns[:, 3] = -1
    pairs = pd.DataFrame(patterns[rng.integers(0, 40, 5_000)], columns=features,
                         index=rng.permutation(5_000) + 11)
    expected = pd.Series("", index=pairs.index)
    for k, feature in enumerate(features):
        expected = expected + ("" if k == 0 else ";") + f"{feature}=" + \
            pairs[feature].astype(int).astype(str)
    assert list(_gamma_profiles(pairs, features)) == list(expected)
    wide = pd.concat([pairs.add_suffix(f"_{k}") for k in range(6)], axis=1)  # 30 features
    wide_features = list(wide.columns)  # past an int64 code per pattern: the other path
    expected = wide[wide_features].astype(int).astype(str).radd(
        [f"{f}=" for f in wide_features]).agg(";".join, axis=1)
    assert list(_gamma_profiles(wide, wide_features)) == list(expected)
    assert list(_gamma_profiles(pairs.iloc[:3], [])) == ["", "", ""]
    assert len(_gamma_profiles(pairs.iloc[:0], features)) == 0
