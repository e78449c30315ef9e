"""Shared fixtures: one Prefect test harness per session, with its own PREFECT_HOME."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before prefect is imported anywhere: a private Prefect home the privacy tests can scan,
# and no telemetry (the CI machine has no network).
_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="pathlink-prefect-home-"))
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """A Prefect ephemeral API for the whole session; yields the folders Prefect writes to."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        db_url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
        db_path = Path(db_url.split(":///", 1)[1]) if ":///" in db_url else None
        yield {"home": _PREFECT_HOME, "db_dir": db_path.parent if db_path else None}


@pytest.fixture(scope="session")
def synthetic_drops(tmp_path_factory) -> Path:
    """A small seeded synthetic drop set (landing/ and truth/), made once per session."""
    from pipelines.synthetic.outcomes import generate_outcomes
    from pipelines.synthetic.participants import generate

    out = tmp_path_factory.mktemp("synthetic")
    generate(out, seed=7, persons=500, periods=["2026-09", "2026-10"])
    generate_outcomes(out, out / "truth" / "participants_truth.csv", seed=7)
    return out
