"""The helper process: normalization shared with it gives the same frame; it dies with its run;
the Prefect API is taken from the environment or the workspace when one is configured."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from linkage import normalize as norm
from pipelines import helpers
from pipelines.orchestration.server import API_URL_ENV, start_api

REPO = Path(__file__).resolve().parents[2]
STREETS = ["Main St", "north main street", "Albany Ave Apt 2", "Park St Fl 3", "Wethersfield Av"]


def _participants(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "partner_record_id": [f"R{i}" for i in range(n)],
        "first_name": ["Ann", "Bo", "Cy"] * (n // 3) + ["Di"] * (n % 3),
        "last_name": "Lee",
        "date_of_birth": "1990-05-01",
        "street_address": [f"{10 + i} {STREETS[i % len(STREETS)]}" for i in range(n)],
        "city": ["Hartford", "New Britain", "W Hartford"][0:1] * n,
        "state": "CT",
        "zip": "06103",
        "phone": [f"(860) {200 + (i % 700):03d}-{i % 10000:04d}" for i in range(n)],
    })


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(max_workers=1) as executor:
        yield executor


@pytest.mark.slow  # scourgify on 2,500 distinct addresses, twice
def test_normalization_shared_with_another_process_is_the_same(pool) -> None:
    raw = _participants(2_500)
    assert raw["street_address"].nunique() >= norm.PARALLEL_MIN_VALUES
    alone = norm.normalize_participants(raw, as_of=date(2026, 1, 1))
    shared = norm.normalize_participants(raw, as_of=date(2026, 1, 1), executor=pool)
    pd.testing.assert_frame_equal(shared, alone)
    assert shared["street"].notna().all() and shared["phone"].notna().sum() > 1_000

    # a busy helper: this process takes back the chunks it has not started
    busy = pool.submit(_sleep, 1.5)
    taken_back = norm.normalize_participants(raw, as_of=date(2026, 1, 1), executor=pool)
    assert busy.result() == 1.5
    pd.testing.assert_frame_equal(taken_back, alone)


def test_shared_map_keeps_order_and_survives_a_closed_executor() -> None:
    items = list(range(norm.PARALLEL_MIN_VALUES + 7))
    with ProcessPoolExecutor(max_workers=1) as executor:
        assert norm._shared_map(items, _double, executor) == _double(items)
    assert norm._shared_map(items, _double, executor) == _double(items)  # shut down: local


def _double(values: list[int]) -> list[int]:
    return [2 * v for v in values]


KILLED = r"""
import os
from pipelines import helpers
pool = helpers.helper()
print(pool.submit(os.getpid).result(), flush=True)
os.kill(os.getpid(), 9)
"""


def test_the_helper_exits_with_a_killed_run() -> None:
    """A SIGKILLed run leaves no helper behind holding its output open."""
    if not helpers.available():
        pytest.skip("one core or a daemonic process: no helper here")
    done = subprocess.run([sys.executable, "-c", KILLED], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == -9
    worker = int(done.stdout.strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{worker}").exists() and \
            "Z" not in Path(f"/proc/{worker}/stat").read_text().split()[2]:
        time.sleep(0.1)
    assert not Path(f"/proc/{worker}").exists() or \
        "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2]


UNGUARDED = r"""
import os
from pipelines import helpers
print("script ran", flush=True)
print(helpers.helper().submit(os.getpid).result() != os.getpid(), flush=True)
"""


def test_the_helper_never_reruns_a_script_without_a_main_guard(tmp_path) -> None:
    """A plain forkserver child re-imports the caller's script; the helper does not."""
    if not helpers.available():
        pytest.skip("one core or a daemonic process: no helper here")
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    done = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["script ran", "True"]


def test_no_helper_when_turned_off(monkeypatch) -> None:
    monkeypatch.setenv(helpers.HELPER_ENV, "0")
    assert helpers.helper() is None


def test_prefect_api_from_the_environment_or_the_workspace(monkeypatch) -> None:
    monkeypatch.setenv(API_URL_ENV, "http://127.0.0.1:4200/api")
    api = start_api("http://elsewhere:4200/api").wait()
    assert api.url == "http://127.0.0.1:4200/api" and not api.started_here
    monkeypatch.delenv(API_URL_ENV)
    api = start_api("http://127.0.0.1:4201/api").wait()
    assert api.url == os.environ[API_URL_ENV] == "http://127.0.0.1:4201/api"
    api.close()  # not started here: the configured address stays for this command
    assert os.environ[API_URL_ENV] == "http://127.0.0.1:4201/api"
