"""Settings for every test: a private PREFECT_HOME and no telemetry, before Prefect is imported.

`tests/unit` needs nothing more. `tests/flows/conftest.py` holds the Prefect harness and the
session's synthetic drops, and marks every test there `slow` (`make test-fast` skips them).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from pipelines.orchestration.server import SERVER_START_SETTINGS

# Before prefect is imported anywhere: a private Prefect home the privacy tests can scan,
# and no telemetry (the CI machine has no network).
os.environ["PREFECT_HOME"] = str(Path(tempfile.mkdtemp(prefix="pathlink-prefect-home-")))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
# The harness's Prefect servers start as the product's do (no block-type registration at
# start: pipelines/orchestration/server.py says why).
for _name, _value in SERVER_START_SETTINGS.items():
    os.environ.setdefault(_name, _value)


# -- running on both cores (pytest-xdist, `make test`) -------------------------------------------
# Each worker runs whole groups: a file, or the files that share a session fixture (built once
# per worker that needs it). Groups are handed out in collection order (the Makefile passes
# --no-loadscope-reorder), so the longest go first and the short unit files fill in behind them.
# (xdist's own `loadgroup` marks do not work with pytest 9, which no longer reads the node id
# xdist rewrites: the grouping is this scheduler's.)
SHARED_FIXTURE_GROUPS = {
    # the `uninterrupted` release
    "test_crash_safety.py": "ops", "test_dask_runner.py": "ops", "test_status.py": "ops",
    # `synthetic_drops` and the pipeline's workspace
    "test_pipeline.py": "synthetic", "test_privacy.py": "synthetic",
    "test_encoded_hub.py": "synthetic",
}
# Estimated seconds per group on the 2-core CI machine; unlisted files count as short.
GROUP_SECONDS = {"ops": 125, "synthetic": 80, "test_deploy.py": 75, "test_safety_flow.py": 45,
                 "test_concurrency.py": 29, "test_review_flow.py": 25,
                 "test_intake_flow.py": 24, "test_rotation_flow.py": 16,
                 "test_sandbox.py": 15, "test_handwritten_drops.py": 12, "test_roi.py": 11,
                 "test_bounded_intake.py": 11, "test_check_engines.py": 8,
                 "test_cli_errors.py": 8, "test_dictionary.py": 8, "test_review_steps.py": 7}


def group_of(nodeid: str) -> str:
    """The group a test runs in: its fixture-sharing group, else its file."""
    path = nodeid.split("::", 1)[0]
    return SHARED_FIXTURE_GROUPS.get(Path(path).name, path)


def _group_seconds(group: str) -> int:
    return GROUP_SECONDS.get(Path(group).name, GROUP_SECONDS.get(group, 0))


def pytest_collection_modifyitems(config, items) -> None:
    """Longest groups first, each group's tests together and in their own order."""
    order = {id(item): i for i, item in enumerate(items)}
    first = {}
    for item in items:
        first.setdefault(group_of(item.nodeid), order[id(item)])
    items.sort(key=lambda item: (-_group_seconds(group_of(item.nodeid)),
                                 first[group_of(item.nodeid)], order[id(item)]))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's
def pytest_xdist_make_scheduler(config, log):
    """With `--dist loadfile`: whole groups per worker (see `group_of`)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupScheduling(config, log)
