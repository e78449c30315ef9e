"""The `pathlink` console script ends without Python's module teardown
(`pipelines.cli._exit`) once armed, unless `PATHLINK_FULL_EXIT=1`. (That a real run loses
nothing by it: `tests/flows/test_crash_safety.py`.)"""

from __future__ import annotations

import os
import subprocess
import sys


def test_an_armed_exit_skips_the_teardown_unless_full_exit_is_asked() -> None:
    """Armed, the process ends with the armed code after the other `atexit` handlers (their
    output flushed) and before any finalizer; `PATHLINK_FULL_EXIT=1` leaves the exit to
    Python, whose teardown runs the finalizer."""
    script = ("import atexit, sys\n"
              "from pipelines.cli import _exit\n"
              "atexit.register(lambda: print('teardown-handler-ran'))\n"  # runs before _exit's
              "_exit.arm(3)\n"
              "class Late:\n"
              "    def __del__(self): print('finalized')\n"
              "keep = Late()\n"
              "sys.exit(3)\n")
    for full, finalized in (("1", True), ("", False)):
        env = {**os.environ, "PATHLINK_FULL_EXIT": full}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 3, done.stderr
        assert "teardown-handler-ran" in done.stdout
        assert ("finalized" in done.stdout) is finalized, (full, done.stdout)
