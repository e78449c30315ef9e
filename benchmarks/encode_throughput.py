"""Encoding throughput on one core: ``encode_participants`` and (optionally) clkhash.

Usage:
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/encode_throughput.py [--n 200000]
        [--clkhash-python /tmp/clkvenv/bin/python]

Builds N synthetic normalized records with a fixed seed, encodes a small batch first (numba
compile / cache load: warm-up, not timed), then times the full encoding (every token and Bloom
filter of the schema, plus passthrough). It reports wall time and this process's CPU time: the
shared cores are often busy with other jobs, which inflates wall time. clkhash (record-level
CLK of the six single-field Bloom fields) is timed only when a separate interpreter with
clkhash installed is given or found at /tmp/clkvenv; it is never a project dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import jellyfish
import numpy as np
import pandas as pd
from faker.providers.person.en_US import Provider as PersonProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linkage.encode import (
    CURRENT_ENCODING_VERSION,
    EncodingSchema,
    encode_participants,
    load_encoding_schema,
)
from schemas import load_schema

DEFAULT_CLKHASH_PYTHON = "/tmp/clkvenv/bin/python"
STREET_NAMES = [
    "MAIN", "ELM", "OAK", "PARK", "MAPLE", "ASYLUM", "FARMINGTON", "PROSPECT", "ALBANY",
    "WASHINGTON", "BROAD", "ZION", "HUYSHOPE", "WETHERSFIELD", "BLUE HILLS", "COLLINS",
]
STREET_TYPES = ["ST", "AVE", "RD", "BLVD", "LN", "DR", "CT", "PL"]


class _BenchSecret:
    """Stand-in secret for the benchmark (duck-types keys.SharedSecret)."""

    fingerprint = "bench"

    def subkey(self, purpose: str) -> bytes:
        import hashlib

        return hashlib.sha256(b"pathlink-bench/" + purpose.encode()).digest()


def _weighted(names: dict[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    keys = np.array([k.lower() for k in names], dtype=object)
    weights = np.array(list(names.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=weights / weights.sum())]


def _mutate(values: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Append a random letter to ``share`` of the values (more distinct names, like real data)."""
    out = values.copy()
    picks = np.flatnonzero(rng.random(len(values)) < share)
    letters = rng.integers(0, 26, size=len(picks))
    for i, letter in zip(picks, letters, strict=True):
        out[i] = out[i] + chr(97 + int(letter))
    return out


def synthetic_normalized(n: int, seed: int = 20240601) -> pd.DataFrame:
    """N normalized participant rows (columns of docs/architecture.md), deterministic."""
    rng = np.random.default_rng(seed)
    first = {**PersonProvider.first_names_female, **PersonProvider.first_names_male}
    given = _mutate(_weighted(first, n, rng), 0.15, rng)
    family = _mutate(_weighted(PersonProvider.last_names, n, rng), 0.25, rng)
    days = rng.integers(0, 365 * 65, size=n)
    dob = (np.datetime64("1940-01-01") + days.astype("timedelta64[D]")).astype(str).astype(object)
    ssn = np.array([f"{a:03d}{b:02d}{c:04d}" for a, b, c in zip(
        rng.integers(1, 665, n), rng.integers(1, 99, n), rng.integers(1, 9999, n), strict=True
    )], dtype=object)
    ssn[rng.random(n) < 0.3] = None
    street = np.array([
        f"{num} {STREET_NAMES[s]} {STREET_TYPES[t]}"
        for num, s, t in zip(rng.integers(1, 3000, n), rng.integers(0, len(STREET_NAMES), n),
                             rng.integers(0, len(STREET_TYPES), n), strict=True)
    ], dtype=object)
    phone = np.array([f"+1860{x:07d}" for x in rng.integers(2000000, 9999999, n)], dtype=object)
    phone[rng.random(n) < 0.2] = None
    email = np.array([f"{g}.{f}{i % 97}@example.org" for i, (g, f) in
                      enumerate(zip(given, family, strict=True))], dtype=object)
    email[rng.random(n) < 0.4] = None
    sex = np.where(rng.random(n) < 0.5, "F", "M").astype(object)
    zip5 = np.array([f"06{x:03d}" for x in rng.integers(0, 1000, n)], dtype=object)
    phonetic = {v: jellyfish.nysiis(v) for v in set(given) | set(family)}
    return pd.DataFrame({
        "given_name": given,
        "given_name_canonical": given,
        "family_name": family,
        "dob": dob,
        "ssn": ssn,
        "sex": sex,
        "street": street,
        "phone": phone,
        "email": email,
        "zip5": zip5,
        "zip3": [z[:3] for z in zip5],
        "given_name_phonetic": [phonetic[v] for v in given],
        "family_name_phonetic": [phonetic[v] for v in family],
    })


CLKHASH_SCRIPT = r"""
import csv, json, sys, time
from clkhash import clk
from clkhash.schema import from_json_dict
path, n_warm = sys.argv[1], int(sys.argv[2])
fields = ["given_name", "family_name", "dob", "street", "phone", "email"]
bits = {"given_name": 20, "family_name": 20, "dob": 20, "street": 10, "phone": 15, "email": 10}
schema = from_json_dict({
    "version": 3,
    "clkConfig": {"l": 1024, "kdf": {"type": "HKDF", "hash": "SHA256", "keySize": 64,
                  "salt": "c2FsdA==", "info": "aW5mbw=="}},
    "features": [{"identifier": f, "format": {"type": "string", "encoding": "utf-8"},
                  "hashing": {"comparison": {"type": "ngram", "n": 2},
                              "strategy": {"bitsPerToken": bits[f]}}} for f in fields],
})
with open(path, newline="") as fh:
    rows = [tuple(r) for r in csv.reader(fh)][1:]
clk.generate_clks(rows[:n_warm], schema, "secret", validate=False, max_workers=1)
start = time.perf_counter()
clk.generate_clks(rows, schema, "secret", validate=False, max_workers=1)
elapsed = time.perf_counter() - start
print(json.dumps({"records": len(rows), "seconds": elapsed}))
"""


def time_clkhash(normalized: pd.DataFrame, python: str) -> str:
    """clkhash records/s on the same records (single process), or why it was not measured."""
    if not Path(python).exists():
        return f"clkhash: not measured ({python} not found; install clkhash in a /tmp venv)"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.csv"
        cols = ["given_name", "family_name", "dob", "street", "phone", "email"]
        normalized[cols].fillna("").to_csv(path, index=False)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run([python, "-c", CLKHASH_SCRIPT, str(path), "1000"],
                              capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return f"clkhash: not measured (failed: {done.stderr.strip().splitlines()[-1:]})"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rate = result["records"] / result["seconds"]
    return (f"clkhash (record-level CLK, same 6 Bloom fields, no tokens, max_workers=1): "
            f"{rate:,.0f} records/s ({result['records']:,} in {result['seconds']:.2f} s)")


def v2_shape() -> EncodingSchema:
    """Schema v2's tokens, filters and hardening under the current version's primitives (v2
    itself can no longer be encoded: its primitives are retired)."""
    spec = load_schema("encoding", 2)
    current = load_schema("encoding", CURRENT_ENCODING_VERSION)
    spec.update(id=current["id"], version=current["version"])
    return EncodingSchema.from_dict(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clkhash-python", default=DEFAULT_CLKHASH_PYTHON)
    parser.add_argument("--schema", choices=["current", "v2-shape"], default="current",
                        help="v2-shape: schema v2's tokens and filters (v2's content) encoded "
                             "with the current primitives, to compare like with like")
    args = parser.parse_args()

    normalized = synthetic_normalized(args.n)
    schema = load_encoding_schema() if args.schema == "current" else v2_shape()
    secret = _BenchSecret()
    encode_participants(normalized.head(2000), secret, schema)  # warm-up: numba compile/cache
    times, cpu_times = [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        encoded = encode_participants(normalized, secret, schema)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    best, best_cpu = min(times), min(cpu_times)
    print(f"records: {args.n:,}  NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}  "
          f"hardening: {schema.raw['hardening']}")
    n_filters = len(schema.bloom)
    print(f"pathlink encode_participants ({args.schema}: {len(schema.tokens)} tokens + "
          f"{len(schema.token_sets)} token sets + {n_filters} Bloom filters): "
          f"{args.n / best:,.0f} records/s wall (best of {args.repeats}: {best:.2f} s; "
          f"all: {', '.join(f'{t:.2f}' for t in times)})")
    print(f"  CPU time of this process: {args.n / best_cpu:,.0f} records/s per CPU-second "
          f"(best {best_cpu:.2f} s; all: {', '.join(f'{t:.2f}' for t in cpu_times)}); "
          f"wall > CPU means the shared cores were busy")
    print(f"encoded columns: {len(encoded.columns)}")
    print(time_clkhash(normalized, args.clkhash_python))


if __name__ == "__main__":
    main()
