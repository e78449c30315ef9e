"""When the command line started: imported first by `pipelines.cli`, before anything heavy."""

from __future__ import annotations

import time

#: `time.perf_counter()` at the command's start (`pathlink run --timings` counts from here).
STARTED = time.perf_counter()
