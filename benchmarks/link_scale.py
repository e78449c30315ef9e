"""Whole-link scale benchmark: N synthetic records through encode -> block -> compare -> classify
-> cluster, with wall times per stage, pair counts, peak RSS and quality against the known truth.

Records come from ``benchmarks/encode_throughput.py``'s fast numpy generator of normalized rows
(Faker name weights, 65 years of birth dates, Hartford-like streets); a share of them is
duplicated with realistic corruptions (a name typo, a dob typo, a moved address, a dropped SSN,
phone or email), spread over four partners. ``pipelines.synth`` is too slow at a million
records, so it is not used here.

Usage:
    .venv/bin/python benchmarks/link_scale.py [--records 1000000] [--duplicates 0.25]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from encode_throughput import STREET_NAMES, STREET_TYPES, _BenchSecret, synthetic_normalized

from linkage.encode import encode_participants, load_encoding_schema
from linkage.engine import CURRENT_SPEC, LinkSpec, link_records
from linkage.evaluate import pairwise_scores, positions_completeness


def _typo(values: np.ndarray, picks: np.ndarray, rng: np.random.Generator) -> None:
    """Replace one letter in each picked value (in place)."""
    for i in picks:
        v = values[i]
        if v:
            j = int(rng.integers(0, len(v)))
            values[i] = v[:j] + chr(97 + int(rng.integers(0, 26))) + v[j + 1:]


def synthetic_with_duplicates(n: int, duplicate_share: float,
                              seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` normalized rows, ``duplicate_share`` of them corrupted copies; and the true ids."""
    rng = np.random.default_rng(seed)
    n_dup = int(n * duplicate_share)
    base = synthetic_normalized(n - n_dup, seed=seed)
    source = rng.integers(0, len(base), n_dup)
    dups = base.iloc[source].reset_index(drop=True)
    for column, share in (("given_name", 0.15), ("family_name", 0.15)):
        values = dups[column].to_numpy(dtype=object).copy()
        _typo(values, np.flatnonzero(rng.random(n_dup) < share), rng)
        dups[column] = values
    dob = dups["dob"].to_numpy(dtype=object).copy()
    for i in np.flatnonzero(rng.random(n_dup) < 0.05):  # a dob typo: day off by a few
        day = int(dob[i][8:10])
        dob[i] = f"{dob[i][:8]}{max(1, min(28, day + int(rng.integers(1, 4)))):02d}"
    dups["dob"] = dob
    moved = rng.random(n_dup) < 0.2
    dups.loc[moved, "street"] = [
        f"{num} {STREET_NAMES[s]} {STREET_TYPES[t]}" for num, s, t in zip(
            rng.integers(1, 3000, moved.sum()), rng.integers(0, len(STREET_NAMES), moved.sum()),
            rng.integers(0, len(STREET_TYPES), moved.sum()), strict=True)]
    for column, share in (("ssn", 0.3), ("phone", 0.3), ("email", 0.3)):
        dups.loc[rng.random(n_dup) < share, column] = None
    normalized = pd.concat([base, dups], ignore_index=True)
    true_id = np.concatenate([np.arange(len(base)), source])
    return normalized, true_id


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--duplicates", type=float, default=0.25)
    parser.add_argument("--spec", default=str(CURRENT_SPEC), help="spec version number or path")
    args = parser.parse_args(argv)
    spec = LinkSpec.load(int(args.spec) if args.spec.isdigit() else args.spec)

    t_all = time.perf_counter()
    t0 = time.perf_counter()
    normalized, true_id = synthetic_with_duplicates(args.records, args.duplicates)
    generate_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    encoded = encode_participants(normalized, _BenchSecret(), load_encoding_schema())
    del normalized
    n = len(encoded)
    encoded["record_key"] = [f"r{i:08d}" for i in range(n)]
    encoded["partner_id"] = np.array(["p1", "p2", "p3", "p4"], dtype=object)[
        np.random.default_rng(1).integers(0, 4, n)]
    encode_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = link_records(encoded, spec, keep_pairs="scored")
    link_s = time.perf_counter() - t0
    total_s = time.perf_counter() - t_all

    truth = pd.DataFrame({"record_key": encoded["record_key"], "true_id": true_id})
    scores = pairwise_scores(result.clusters, truth)
    completeness = positions_completeness(result.candidates.left, result.candidates.right,
                                          pd.Series(true_id))
    stats = result.stats
    print(f"records={n:,} duplicates={args.duplicates} true_pairs={scores['true_pairs']:,}")
    print(f"generate_s={generate_s:.1f} (not in total) encode_s={encode_s:.1f} "
          f"block_s={stats['block_s']:.1f} compare_s={stats['compare_s']:.1f} "
          f"classify_s={stats['classify_s']:.1f} "
          f"frequency_s={stats.get('frequency_s', 0.0):.1f} cluster_s={stats['cluster_s']:.1f} "
          f"link_s={link_s:.1f} total_s={total_s - generate_s:.1f}")
    print(f"peak_rss_gb={_rss_gb():.2f} candidate_pairs={stats['candidate_pairs']:,} "
          f"({stats['candidate_pairs'] / n:.1f} per record) match_pairs={stats['match_pairs']:,} "
          f"frequency_adjusted_pairs={stats['frequency_adjusted_pairs']:,} "
          f"frequency_demoted_matches={stats['frequency_demoted_matches']:,}")
    print("pairs_by_rule: " + ", ".join(f"{k.split(':', 1)[1]}={v:,}"
                                         for k, v in stats["pairs_by_rule"].items()))
    skipped = {k.split(":", 1)[1]: v for k, v in stats["skipped_blocks"].items() if v}
    print(f"skipped_blocks: {skipped}")
    print(f"pairs_completeness={completeness:.4f} precision={scores['precision']:.4f} "
          f"recall={scores['recall']:.4f} f1={scores['f1']:.4f}")
    if stats.get("notes"):
        print("notes: " + "; ".join(stats["notes"]))


if __name__ == "__main__":
    main()
