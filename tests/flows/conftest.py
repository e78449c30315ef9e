"""End-to-end tests: the real flows on a Prefect test server, and CLI subprocesses.

Every test under tests/flows is marked `slow` here, so `make test-fast` (`-m "not slow"`)
leaves them out; `make test` and CI run them. Session fixtures build each shared workspace
once: no module-level caches.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _ops import AS_OF, PERIODS, canonical_release, grouping, make_workspace

FLOWS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if FLOWS in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def prefect_harness():
    """A Prefect ephemeral API for the whole session; yields the folders Prefect writes to."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        db_url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
        db_path = Path(db_url.split(":///", 1)[1]) if ":///" in db_url else None
        yield {"home": Path(os.environ["PREFECT_HOME"]),
               "db_dir": db_path.parent if db_path else None}


@pytest.fixture(scope="session")
def synthetic_drops(tmp_path_factory) -> Path:
    """A small seeded synthetic drop set with outcomes (landing/ and truth/)."""
    from pipelines.synthetic.outcomes import generate_outcomes
    from pipelines.synthetic.participants import generate

    out = tmp_path_factory.mktemp("synthetic")
    generate(out, seed=7, persons=500, periods=["2026-09", "2026-10"])
    generate_outcomes(out, out / "truth" / "participants_truth.csv", seed=7)
    return out


@pytest.fixture(scope="session")
def ops_drops(tmp_path_factory) -> Path:
    """Seeded participant drops of the seven partners for two periods (ops tests use three)."""
    from pipelines.synthetic.participants import generate

    out = tmp_path_factory.mktemp("ops-synthetic")
    generate(out, seed=11, persons=150, periods=PERIODS)
    return out


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory, prefect_harness, ops_drops: Path) -> dict:
    """One uninterrupted default-runner run over `ops_drops`: the release others must equal."""
    from pipelines.orchestration.flows import run_workspace
    from pipelines.workspace import load_workspace

    root = make_workspace(tmp_path_factory.mktemp("ops-ws") / "uninterrupted", ops_drops)
    summary = run_workspace(root, as_of=AS_OF, seed=1)
    return {"root": root, "summary": summary, "release": canonical_release(root),
            "grouping": grouping(load_workspace(root).state_db)}
