"""Settings for every test: a private PREFECT_HOME and no telemetry, before Prefect is imported.

`tests/unit` needs nothing more. `tests/flows/conftest.py` holds the Prefect harness and the
session's synthetic drops, and marks every test there `slow` (`make test-fast` skips them).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before prefect is imported anywhere: a private Prefect home the privacy tests can scan,
# and no telemetry (the CI machine has no network).
os.environ["PREFECT_HOME"] = str(Path(tempfile.mkdtemp(prefix="pathlink-prefect-home-")))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
