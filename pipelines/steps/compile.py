"""Compile every numba kernel of the linkage library into numba's cache, on made-up records.

numba compiles a kernel on its first call and caches the machine code beside the source
(`__pycache__`, or numba's cache folder when the source is read-only). On a fresh checkout the
first run pays the compile: about 9 s of CPU on the 2-core machine, paid again by every test
worker that reaches a kernel before the cache is written. `make` runs this once after it
installs (`python -m pipelines.steps.compile`), so the first run, the demo and the tests load
the kernels instead. Nothing is kept but numba's cache: the records are made up and the key is
a throwaway.
"""

from __future__ import annotations

import sys
import time
from datetime import date

import pandas as pd

from keys import SharedSecret, generate_secret
from linkage.encode import encode_participants, load_encoding_schema
from linkage.engine import link_records
from linkage.normalize import normalize_participants
from linkage.spec import load_link_spec

#: Made-up people, two partners: the same person twice (with a typo), twins (same name parts
#: and address, different SSNs: the clustering's cannot-link guard) and strangers, so that
#: blocking, every comparison, scoring and clustering run.
_PEOPLE = [
    ("a", "1", "Ann", "Lee", "2001-02-03", "123-45-6789", "12 Main St"),
    ("b", "1", "Anne", "Lee", "2001-02-03", "123-45-6789", "12 Main Street"),
    ("a", "2", "Jon", "Ortiz", "1999-07-08", "234-56-7890", "40 Park Ave"),
    ("b", "2", "John", "Ortiz", "1999-07-08", "345-67-8901", "40 Park Ave"),
    ("a", "3", "Maria", "Santos", "1985-11-12", "456-78-9012", "7 Elm St"),
    ("b", "3", "Mario", "Santos", "1985-11-12", "567-89-0123", "7 Elm St"),
    ("a", "4", "Kim", "Nguyen", "1990-01-30", "", "99 Oak Rd"),
    ("b", "4", "Dee", "Brown", "1978-05-05", "678-90-1234", "3 Pine Ct"),
]


def made_up_records() -> pd.DataFrame:
    """The made-up people as a participants extract (two partners' rows in one frame)."""
    return pd.DataFrame([{
        "partner_id": partner, "partner_record_id": record, "first_name": first,
        "last_name": last, "date_of_birth": dob, "ssn": ssn, "street_address": street,
        "city": "Hartford", "state": "CT", "zip": "06103", "phone": "860-555-0100",
        "email": f"{first.lower()}@example.org"}
        for partner, record, first, last, dob, ssn, street in _PEOPLE])


def compile_kernels() -> int:
    """Normalize, encode (throwaway key) and link the made-up records; the records linked."""
    records = made_up_records()
    normalized = normalize_participants(records.drop(columns=["partner_id"]),
                                        as_of=date(2026, 1, 31))
    encoded = encode_participants(normalized, SharedSecret("compile", generate_secret()),
                                  load_encoding_schema())
    encoded["partner_id"] = records["partner_id"].to_numpy()
    encoded["record_key"] = (records["partner_id"] + ":" + records["partner_record_id"]).to_numpy()
    link_records(encoded, load_link_spec())
    return len(encoded)


def main() -> int:
    started = time.perf_counter()
    compile_kernels()
    sys.stderr.write(f"linkage kernels compiled into numba's cache in "
                     f"{time.perf_counter() - started:.1f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
