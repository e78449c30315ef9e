"""Throughput of linkage.normalize.normalize_participants on synthetic, heavily repeated data.

Usage: .venv/bin/python benchmarks/normalize_throughput.py [rows] [distinct_streets]

Builds its own records with a fixed seed (no real data), then prints rows/s for
(1) every column except street_address (cold caches), and (2) the same rows with
street addresses drawn from `distinct_streets` distinct values (scourgify runs once per
distinct address).
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import numpy as np
import pandas as pd

from linkage.normalize import normalize_participants

SEED = 20240601
FIRST = ["Bill", "William", "José", "Zoë", "Liz", "Maria", "Bob", "Ana", "Kate", "Mike", "Jim"]
LAST = ["Smith Jr.", "Garcia-Lopez", "de la Cruz", "O'Brien", "Nguyen", "Rivera", "Lee III"]
STREET_TYPES = ["street", "avenue", "road", "lane", "drive", "blvd"]
STREET_NAMES = ["main", "elm", "farmington", "park", "albany", "wethersfield", "maple"]


def synthetic_participants(rows: int, distinct_streets: int, seed: int = SEED) -> pd.DataFrame:
    """Build `rows` synthetic raw participant records with heavy value repetition."""
    rng = np.random.default_rng(seed)

    def pick(pool: list[str]) -> np.ndarray:
        return np.asarray(pool, dtype=object)[rng.integers(0, len(pool), rows)]

    years = rng.integers(1930, 2010, 3000)
    months = rng.integers(1, 13, 3000)
    days = rng.integers(1, 29, 3000)
    dobs = [f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in zip(years, months, days, strict=True)]
    dobs += [f"{m:02d}/{d:02d}/{y:04d}" for y, m, d in zip(years, months, days, strict=True)]
    ssns = [f"{a:03d}-{g:02d}-{s:04d}" for a, g, s in rng.integers(1, 999, (5000, 3))]
    phones = [f"(860) {p:03d}-{q:04d}" for p, q in rng.integers(200, 999, (5000, 2))]
    streets = [
        f"{number} {direction} {name} {kind}"
        for number, direction, name, kind in zip(
            rng.integers(1, 3000, distinct_streets),
            rng.choice(["north", "south", "", "w"], distinct_streets),
            rng.choice(STREET_NAMES, distinct_streets),
            rng.choice(STREET_TYPES, distinct_streets),
            strict=True,
        )
    ]
    frame = pd.DataFrame(
        {
            "partner_record_id": [f"r{i}" for i in range(rows)],
            "first_name": pick(FIRST),
            "middle_name": pick(["", "Ann", "Q.", "Marie"]),
            "last_name": pick(LAST),
            "suffix": pick(["", "", "", "Jr.", "III"]),
            "date_of_birth": pick([*dobs, "", "2001-02-30", "1/2/1990"]),
            "ssn": pick([*ssns, "", "000-00-0000"]),
            "sex": pick(["F", "M", "female", "male", "x", ""]),
            "city": pick(["Hartford", "West Hartford", "East Hartford", "New Britain"]),
            "state": pick(["CT", "Connecticut", "ct"]),
            "zip": pick(["06103", "06106-1234", "06107", "6114"]),
            "phone": pick([*phones, ""]),
            "email": pick([f"user{i}@example.org" for i in range(5000)] + ["bad@"]),
            "street_address": pick(streets),
        }
    )
    return frame.replace({"": np.nan})


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    distinct_streets = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    raw = synthetic_participants(rows, distinct_streets)
    as_of = dt.date(2024, 6, 1)

    start = time.perf_counter()
    normalize_participants(raw.drop(columns=["street_address"]), as_of=as_of)
    no_address = time.perf_counter() - start
    print(
        f"without street_address: {rows} rows in {no_address:.2f}s"
        f" = {rows / no_address:,.0f} rows/s"
    )

    start = time.perf_counter()
    normalize_participants(raw, as_of=as_of)
    with_address = time.perf_counter() - start
    print(
        f"with street_address ({distinct_streets} distinct): {rows} rows in {with_address:.2f}s"
        f" = {rows / with_address:,.0f} rows/s"
    )


if __name__ == "__main__":
    main()
