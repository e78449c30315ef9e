"""Estimated against true linkage accuracy on the synthetic Hartford set (issue 18).

The hub's own path, without Prefect: the synthetic partners' drops of one period are ingested
and linked by the pipeline steps into a fresh workspace (a fresh random key), then
``pathlink review sample`` draws its stratified sample (``pipelines.steps.review.draw_sample``),
each sampled pair is decided from the synthetic truth (``match`` when both records are the same
true person, else ``distinct``: a perfect reviewer) and ``pathlink review accuracy``
(``accuracy_report``) estimates precision and recall with 95% intervals.

The true figures come from the truth over **every candidate pair** of the same link (the
population the estimate speaks of): the records are linked again with ``keep_pairs="all"``
(the engine is deterministic; the script checks that the scored pairs' weights are the stored
ones) and each pair is labelled from the truth. ``--repeats N`` draws N samples (seeds
``seed``, ``seed+1``, ...) and says how often each interval held the true figure.

Usage:
    .venv/bin/python benchmarks/review_accuracy.py [--persons 3000] [--size 200] [--seed 7]
        [--repeats 1]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from linkage.encode import load_encoding_schema
from linkage.engine import link_records
from pipelines.ingest.landing import sha256_file
from pipelines.state import StateStore
from pipelines.steps import ingest
from pipelines.steps.context import RunContext
from pipelines.steps.link import link_spec, link_workspace
from pipelines.steps.review import PairRef, accuracy_report, draw_sample, record_decisions
from pipelines.synthetic import participants as synth
from pipelines.workspace import init_workspace

PERIOD = "2026-10"


def build(root: Path, persons: int) -> tuple[RunContext, pd.DataFrame, float]:
    """Generate, ingest and link one period; returns the run, the truth and seconds taken."""
    out = root / "synthetic"
    summary = synth.generate(out, persons=persons, periods=[PERIOD])
    truth = pd.read_csv(summary.truth_path, dtype=str)
    truth = truth[truth["period"] == PERIOD]
    truth = pd.DataFrame({"record_key": truth["partner_id"] + ":" + truth["partner_record_id"],
                          "true_id": truth["true_person_id"]})
    partners = sorted(p.name for p in summary.landing_dir.iterdir() if p.is_dir())
    ws = init_workspace(root / "hub", partners, key_id="bench")
    t0 = time.perf_counter()
    run = RunContext(ws, "run-1", date(2026, 10, 28), "benchmark")
    for partner in partners:
        for source in sorted((summary.landing_dir / partner / PERIOD).glob("*")):
            rel = f"{partner}/{PERIOD}/{source.name}"
            (ws.landing / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, ws.landing / rel)
            ctx = run.drop(rel, sha256_file(ws.landing / rel))
            outcome = ingest.DropOutcome.for_drop(ctx)
            validation = ingest.validate_drop(ctx, ingest.read_drop(ctx).frame)
            outcome.count(validation.counts["read"], validation.counts["accepted"],
                          validation.counts["quarantined"])
            batch = ingest.encode(ctx, ingest.normalize(ctx, validation.accepted),
                                  validation.accepted)
            ingest.store_drop(ctx, outcome, batch=batch, validation=validation)
    link_workspace(run, PERIOD, seed=1)
    return run, truth, time.perf_counter() - t0


def true_figures(run: RunContext, truth: pd.DataFrame) -> tuple[dict[str, float], dict]:
    """Precision and recall over every candidate pair of the link, from the truth."""
    ws = run.ws
    with StateStore(ws.state_db) as state:
        records = state.latest_records(ws.fingerprint_or_none(), only_key=True,
                                       encoding_schema=load_encoding_schema().id)
        crosswalk = state.crosswalk()
        stored = state.review_pairs()
        model = state.link_model()
    spec = link_spec(ws)
    pairs = link_records(records, spec, keep_pairs="all").pairs
    true_id = truth.set_index("record_key")["true_id"]
    person = crosswalk.set_index("record_key")["person_id"]
    is_true = (pairs["record_key_l"].map(true_id).to_numpy()
               == pairs["record_key_r"].map(true_id).to_numpy())
    linked = (pairs["record_key_l"].map(person).to_numpy()
              == pairs["record_key_r"].map(person).to_numpy())
    weight = pairs["match_weight"].to_numpy(dtype=float)
    # the same link: the stored pairs have the weights this link gives them
    again = pairs.assign(key=pairs["record_key_l"] + "|" + pairs["record_key_r"]).set_index(
        "key")["match_weight"]
    scored = stored[stored["match_class"] != "non_match"]
    diff = np.abs(scored["match_weight"].to_numpy()
                  - (scored["record_key_l"] + "|" + scored["record_key_r"]).map(again)
                  .to_numpy(dtype=float))
    fs = spec.fellegi_sunter
    out = {}
    for name, t in (("match", fs.match_weight_threshold),
                    ("possible", fs.possible_weight_threshold)):
        above = weight >= t
        out[f"precision@{name}"] = is_true[above].mean()
        out[f"recall@{name}"] = is_true[above].sum() / is_true.sum()
    out["precision@linked"] = is_true[linked].mean()
    out["recall@linked"] = is_true[linked].sum() / is_true.sum()
    all_true = truth.groupby("true_id").size()
    facts = {"records": len(records), "candidate_pairs": len(pairs),
             "true_candidate_pairs": int(is_true.sum()),
             "true_pairs": int((all_true * (all_true - 1) // 2).sum()),
             "max_weight_difference": float(np.nanmax(diff)) if len(diff) else 0.0,
             "pairs_missing": int(np.isnan(diff).sum()),
             "thresholds": (fs.match_weight_threshold, fs.possible_weight_threshold),
             "run_id": model["run_id"]}
    return out, facts


def label_sample(run: RunContext, sample_id: str, truth: pd.DataFrame) -> int:
    """Decide every pair of the sample from the truth (a perfect reviewer)."""
    true_id = truth.set_index("record_key")["true_id"]
    with StateStore(run.ws.state_db) as state:
        pairs = state.sample_pairs(sample_id)
        decided = set(state.decisions()["pair_id"])
    rows = [{"pair": PairRef(p.pair_id, p.record_key_l, p.record_key_r),
             "decision": "match" if true_id.get(p.record_key_l) == true_id.get(p.record_key_r)
             else "distinct", "decided_by": "synthetic-truth"}
            for p in pairs.itertuples() if p.pair_id not in decided]
    record_decisions(run.ws, rows, source="benchmark:truth")
    return len(pairs)


KEYS = {("precision", "pairs at or above the match"): "precision@match",
        ("recall", "pairs at or above the match"): "recall@match",
        ("precision", "pairs at or above the possible"): "precision@possible",
        ("recall", "pairs at or above the possible"): "recall@possible",
        ("precision", "records linked"): "precision@linked",
        ("recall", "records linked"): "recall@linked"}


def _key(figure: dict) -> str:
    for (measure, what), key in KEYS.items():
        if figure["measure"] == measure and figure["what"].startswith(what):
            return key
    raise KeyError(figure["what"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run, truth, seconds = build(Path(tmp), args.persons)
        truth_figures, facts = true_figures(run, truth)
        t_match, t_possible = facts["thresholds"]
        print(f"synthetic set, {args.persons} persons, period {PERIOD}: {facts['records']:,} "
              f"records, {facts['candidate_pairs']:,} candidate pairs, "
              f"{facts['true_candidate_pairs']:,} of {facts['true_pairs']:,} true pairs "
              f"compared; ingest+link {seconds:.1f} s")
        print(f"thresholds: match {t_match:g}, possible {t_possible:g} bits; relinked with "
              f"every pair kept: stored weights reproduced to {facts['max_weight_difference']:.2g}"
              f" ({facts['pairs_missing']} stored pairs missing)")
        covered = dict.fromkeys(truth_figures, 0)
        misses: list[str] = []
        for r in range(args.repeats):
            drawn = draw_sample(run.ws, size=args.size, seed=args.seed + r, by="benchmark")
            label_sample(run, drawn["sample_id"], truth)
            report = accuracy_report(run.ws, sample_id=drawn["sample_id"])
            if r == 0:
                classes = ", ".join(f"{n} {c}" for c, n in sorted(drawn["by_class"].items()))
                print(f"\nsample {drawn['sample_id']} (seed {drawn['seed']}): "
                      f"{report['labelled']} of {report['sample_size']} pairs labelled from the "
                      f"truth ({classes}); below {report['tail']['below']:g} bits "
                      f"{report['tail']['pairs']:,} pairs, the model expects "
                      f"{report['tail']['expected_matches']:.2f} matches there")
                print(f"{'figure':66} {'estimate':>8} {'95% interval':>17} {'true':>8}")
            for f in report["figures"]:
                key = _key(f)
                hit = f["estimate"] is not None and \
                    f["low"] - 1e-9 <= truth_figures[key] <= f["high"] + 1e-9
                covered[key] += hit
                if not hit and f["estimate"] is not None:
                    gap = max(f["low"] - truth_figures[key], truth_figures[key] - f["high"])
                    misses.append(f"  sample {drawn['sample_id']}: {key} {f['estimate']:.6f} "
                                  f"({f['low']:.6f}-{f['high']:.6f}), true "
                                  f"{truth_figures[key]:.6f}: outside by {gap:.2g}")
                if r == 0:
                    est = "-" if f["estimate"] is None else f"{f['estimate']:.4f}"
                    ci = "" if f["estimate"] is None else f"{f['low']:.4f}-{f['high']:.4f}"
                    print(f"{f['measure'] + ' of ' + f['what']:66} {est:>8} {ci:>17} "
                          f"{truth_figures[key]:8.4f}{'' if hit else '  (outside)'}")
        if args.repeats > 1:
            print(f"\n{args.repeats} samples of {args.size}: the 95% interval held the true "
                  "figure in")
            for key, n in covered.items():
                print(f"  {key:20} {n}/{args.repeats}")
        if misses:
            print("where it did not:")
            print("\n".join(misses))


if __name__ == "__main__":
    main()
