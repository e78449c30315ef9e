"""`python -m pipelines.steps.compile` (run by `make` after installing) reaches every numba
kernel a run calls, so a fresh checkout's first run loads them from numba's cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: The kernels a run calls directly (the rest are called from inside these, or only by
#: encoding options the current schema turns off: xor-folding, balancing, BLIP, unsalted
#: filters, plain Dice).
RUN_KERNELS = {
    "linkage.block": ["_band_keys"],
    "linkage.compare": ["_row_popcounts", "_dice_levels_kernel", "_shared_tokens_kernel"],
    "linkage.cluster": ["_greedy"],
    "linkage.encode._kernels": ["qgram_codes", "gather_elements", "build_salted_filters",
                                "join_rows"],
}

PROBE = """
import importlib, json
from pipelines.steps.compile import compile_kernels
assert compile_kernels() == 8
kernels = json.loads(input())
print(json.dumps({m: {k: len(getattr(importlib.import_module(m), k).signatures) for k in ks}
                  for m, ks in kernels.items()}))
"""


@pytest.mark.slow  # over ~2 s (a fresh interpreter): left out of `make test-fast`
def test_compile_step_reaches_every_kernel_a_run_calls() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], input=json.dumps(RUN_KERNELS),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    compiled = json.loads(done.stdout)
    assert {(m, k) for m, ks in compiled.items() for k, n in ks.items() if n == 0} == set()
