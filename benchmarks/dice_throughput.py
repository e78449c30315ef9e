"""Dice similarity throughput of the numba kernel on one core.

Usage:
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/dice_throughput.py [--records N] [--pairs N]

Filters are random 1024-bit Bloom filters (16 uint64 words, ~25% of bits set). Two pair
orders are timed: "blocked" (pairs sorted by the left record, the order blocking emits) and
"random" (uniformly random pairs, cache-unfriendly once the matrix outgrows the cache). Reported:
the similarity kernel writing into a reused float32 buffer (as a chunked caller would), the same
with a fresh output array per call, and the gamma-level kernel (what compare_pairs runs; all
Dice fields of a pair in one pass, here one field). Popcounts per record are computed once,
outside the timing, as ComparisonColumns does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from linkage.compare import bloom_words, dice_levels, dice_similarity


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    raw = (rng.integers(0, 256, (args.records, 128), dtype=np.uint8)
           & rng.integers(0, 256, (args.records, 128), dtype=np.uint8))
    words, counts, present = bloom_words([row.tobytes() for row in raw])
    thresholds = np.array([0.95, 0.85, 0.7])

    random_left = rng.integers(0, args.records, args.pairs).astype(np.int64)
    random_right = rng.integers(0, args.records, args.pairs).astype(np.int64)
    blocked_left = np.sort(random_left)
    blocked_right = np.clip(blocked_left + rng.integers(1, 50, args.pairs), 0, args.records - 1)

    # compile
    dice_similarity(words, counts, blocked_left[:10], blocked_right[:10])
    dice_levels(words, counts, present, blocked_left[:10], blocked_right[:10], thresholds)

    print(f"numba {numba.__version__}, threads={numba.get_num_threads()}, "
          f"records={args.records}, pairs={args.pairs}, filter=1024 bits")
    out = np.empty(args.pairs, dtype=np.float32)
    for order, (left, right) in {"blocked": (blocked_left, blocked_right),
                                 "random": (random_left, random_right)}.items():
        t_buf = _best(lambda left=left, right=right: dice_similarity(words, counts, left, right,
                                                                     out=out), args.repeats)
        t_sim = _best(lambda left=left, right=right: dice_similarity(words, counts, left, right),
                      args.repeats)
        t_lvl = _best(lambda left=left, right=right: dice_levels(words, counts, present, left,
                                                                  right, thresholds),
                      args.repeats)
        print(f"{order:8s} similarity: {args.pairs / t_buf / 1e6:7.1f} M pairs/s (reused out)  "
              f"{args.pairs / t_sim / 1e6:7.1f} M pairs/s (new out)   "
              f"levels: {args.pairs / t_lvl / 1e6:7.1f} M pairs/s")

if __name__ == "__main__":
    main()
