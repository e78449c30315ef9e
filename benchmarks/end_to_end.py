"""A month end to end: `pathlink run` on 1k, 10k and 100k-record months (1M with --million).

For each size this script

1. generates a Hartford-like month for seven partners (`heldout_data.hartford_households`, the
   held-out generator, plus filled profile and barrier columns so that publish has real work),
   cached as Parquet under ``--cache`` (generation is not timed);
2. creates a fresh workspace (``pathlink init``), writes each partner's
   ``landing/<partner>/2026-11/participants.csv`` and runs ``pathlink run`` in a subprocess;
3. prints the wall time, the peak RSS of the whole process tree (the CLI, Prefect's temporary
   server, process-pool workers; sampled every 20 ms) and the per-stage breakdown the run
   writes with ``--timings`` (stage seconds summed over drops; "startup" is process start to
   the flow, "other" what no stage accounts for). Each run starts Prefect's temporary
   server, as a plain `pathlink run` does; with --server every run uses one local server
   started beforehand (not timed), as scheduled runs under `pathlink serve` or a configured
   `[runner] prefect_api_url` do;
4. times ``pathlink check`` (default engine, whole process) on a 20k-row participants file
   cut from the 100k month (or the largest month generated), as a partner would run it;
5. with Splink installed (the optional extra ``compare``), runs Splink on the same records in a
   subprocess of its own (the same plain-text model as ``benchmarks/linkage_vs_splink.py``,
   whole process: imports, cleaning, training, prediction, clustering) and prints the ratio.

Usage:
    .venv/bin/python benchmarks/end_to_end.py [--sizes 1k,10k,100k] [--million] [--no-splink]
        [--repeat N] [--cache DIR] [--keep DIR] [--no-check] [--server]

Run it on an otherwise idle machine; the script prints the load average before each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

PERIOD = "2026-11"
AS_OF = "2026-11-30"
RECORDS_PER_PERSON = 1.816  # hartford_households: records per generated person (measured)
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
PATHLINK = REPO / ".venv" / "bin" / "pathlink"
PYTHON = sys.executable

# Profile columns at program entry (participants contract), filled as partners fill them.
_YES_NO_DECLINED = ("yes", "no", "declined")
_RACES = ("black_african_american", "white", "asian", "american_indian_alaska_native",
          "black_african_american;white", "declined")
_BARRIERS = ("returning_citizen", "homeless", "low_income", "english_learner",
             "basic_skills_deficient", "single_parent", "foster_care")
_EDUCATION = ("less_than_high_school", "high_school_diploma", "some_postsecondary",
              "associate_degree", "bachelor_degree")
_EMPLOYMENT = ("employed", "unemployed", "not_in_labor_force")


def _with_profile(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Add the contract's profile columns, mostly filled (each record draws its own)."""
    rng = np.random.default_rng(seed)
    n = len(frame)

    def pick(values: tuple[str, ...], filled: float, p: list[float] | None = None) -> np.ndarray:
        out = rng.choice(np.array(values, dtype=object), size=n, p=p)
        out[rng.random(n) > filled] = ""
        return out

    profile = {
        "hispanic_latino": pick(_YES_NO_DECLINED, 0.85, [0.4, 0.55, 0.05]),
        "race": pick(_RACES, 0.8, [0.35, 0.35, 0.05, 0.02, 0.13, 0.1]),
        "disability": pick(_YES_NO_DECLINED, 0.6, [0.1, 0.85, 0.05]),
        "veteran": pick(_YES_NO_DECLINED, 0.6, [0.05, 0.9, 0.05]),
        "highest_education": pick(_EDUCATION, 0.7),
        "employment_status_at_entry": pick(_EMPLOYMENT, 0.7),
    }
    for barrier in _BARRIERS:
        profile[barrier] = pick(("yes", "no"), 0.65, [0.2, 0.8])
    return frame.assign(**profile)


def month(size: str, cache: Path) -> pd.DataFrame:
    """The generated month of about `SIZES[size]` records (cached as Parquet)."""
    import heldout_data

    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"month-{size}.parquet"
    if path.exists():
        return pd.read_parquet(path)
    persons = max(10, round(SIZES[size] / RECORDS_PER_PERSON))
    started = time.perf_counter()
    frame, _truth = heldout_data.hartford_households(persons, seed=20 + len(size))
    frame = _with_profile(frame, seed=len(frame))
    frame.attrs.clear()
    frame.to_parquet(path, index=False)
    print(f"  generated {len(frame):,} records for {persons:,} persons in "
          f"{time.perf_counter() - started:.0f} s -> {path}", flush=True)
    return frame


def make_workspace(root: Path, frame: pd.DataFrame) -> Path:
    """A fresh workspace with one participants drop per partner."""
    partners = sorted(frame["partner_id"].unique())
    subprocess.run([str(PATHLINK), "init", str(root), "--partners", ",".join(partners)],
                   check=True, capture_output=True)
    for partner_id, rows in frame.groupby("partner_id", sort=True):
        folder = root / "landing" / str(partner_id) / PERIOD
        folder.mkdir(parents=True, exist_ok=True)
        rows.drop(columns=["partner_id"]).to_csv(folder / "participants.csv", index=False)
    return root


class TreeSampler:
    """Peak RSS of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(command: list[str], env: dict[str, str] | None = None,
          ok: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
    """(wall seconds, peak tree RSS bytes, stderr tail) of one subprocess (exit code in `ok`)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    with TreeSampler(proc.pid) as sampler:
        _out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode not in ok:
        raise RuntimeError(f"{command[0]} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, sampler.peak, err[-2000:]


PERSISTENT_API: str | None = None  # --server: one local Prefect server for every run


def pathlink_env(cache: Path) -> dict[str, str]:
    """The benchmark's own Prefect home (its database migrated once, by `warm_up`); with
    --server, the address of the server started once for all runs."""
    env = {**os.environ, "PREFECT_HOME": str(cache / "prefect-home"),
           "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
    env.pop("PREFECT_API_URL", None)
    if PERSISTENT_API:
        env["PREFECT_API_URL"] = PERSISTENT_API
    return env


def start_persistent_server(cache: Path) -> str:
    """A local Prefect server over the benchmark's database, kept for every run (as under
    `pathlink serve`, or `[runner] prefect_api_url`); stopped at exit. Its start is not timed."""
    from pipelines.orchestration.server import TemporaryServer

    os.environ["PREFECT_HOME"] = str(cache / "prefect-home")
    os.environ.pop("PREFECT_API_URL", None)
    server = TemporaryServer()
    server.wait_healthy(120)
    return server.api_url


def warm_up(cache: Path) -> float:
    """One run on an empty workspace: creates and migrates the Prefect database, as any
    analyst's first run does once (not reported)."""
    with tempfile.TemporaryDirectory(prefix="e2e-warm-") as tmp:
        root = Path(tmp) / "workspace"
        subprocess.run([str(PATHLINK), "init", str(root), "--partners", "p"], check=True,
                       capture_output=True)
        wall, _peak, _err = timed([str(PATHLINK), "run", "--workspace", str(root),
                                   "--no-progress"], pathlink_env(cache))
    return wall


def run_pathlink(frame: pd.DataFrame, workdir: Path, cache: Path) -> dict:
    root = make_workspace(workdir / "workspace", frame)
    timings = workdir / "timings.json"
    env = pathlink_env(cache)
    wall, peak, _err = timed([str(PATHLINK), "run", "--workspace", str(root), "--as-of", AS_OF,
                              "--no-progress", "--timings", str(timings)], env)
    stages = json.loads(timings.read_text()) if timings.exists() else {}
    return {"wall": wall, "peak": peak, "stages": stages, "root": root}


CHECK_ROWS = 20_000


def run_check(frame: pd.DataFrame, workdir: Path, cache: Path) -> dict:
    """`pathlink check` on one partner-shaped file of `CHECK_ROWS` rows (whole process).

    Exit code 1 (the file has rows to fix) is a normal outcome of a check, not a failure.
    """
    path = workdir / "participants.csv"
    rows = frame.head(CHECK_ROWS).drop(columns=["partner_id"])
    rows.to_csv(path, index=False)
    wall, peak, _err = timed([str(PATHLINK), "check", str(path), "--dataset", "participants",
                              "--out", str(workdir / "check.txt")], pathlink_env(cache),
                             ok=(0, 1))
    lines = (workdir / "check.txt").read_text().count("\n")
    return {"wall": wall, "peak": peak, "rows": len(rows), "report_lines": lines}


def splink_available() -> bool:
    try:
        import splink  # noqa: F401
    except ImportError:
        return False
    return True


def run_splink(data: Path, workdir: Path) -> dict:
    out = workdir / "splink.json"
    wall, peak, _err = timed([PYTHON, str(Path(__file__).resolve()), "--splink-worker",
                              str(data), str(out)])
    return {"wall": wall, "peak": peak, **json.loads(out.read_text())}


def splink_worker(data: Path, out: Path) -> None:
    """Splink on one cached month, as in linkage_vs_splink (called in a subprocess)."""
    import linkage_vs_splink as lvs

    frame = pd.read_parquet(data)
    truth = pd.DataFrame({"record_key": frame["partner_id"] + ":" + frame["partner_record_id"],
                          "true_id": "x", "household_id": None})
    started = time.perf_counter()
    result = lvs.run_splink(frame, truth, "link_and_dedupe", threshold=0.9, seed=13,
                            u_max_pairs=1e6)
    out.write_text(json.dumps({"seconds": time.perf_counter() - started,
                               "clusters": int(result["clusters"]["cluster_id"].nunique())}))


STAGE_ORDER = ("startup", "discover", "read", "validate", "normalize", "encode", "store",
               "link", "publish", "report", "other")


def _stage_line(stages: dict) -> str:
    if not stages:
        return "(no --timings output)"
    return "  ".join(f"{name} {stages[name]:.1f}" for name in STAGE_ORDER if name in stages)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1k,10k,100k")
    parser.add_argument("--million", action="store_true", help="also the 1M-record month")
    parser.add_argument("--no-splink", action="store_true")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the `pathlink check` timing on a 20k-row file")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) /
                        "pathlink-bench-cache")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the workspaces under this folder")
    parser.add_argument("--server", action="store_true",
                        help="run against one local Prefect server started before the runs "
                        "(as under `pathlink serve`); default: each run starts Prefect's "
                        "temporary server, as a plain `pathlink run` does")
    parser.add_argument("--splink-worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.splink_worker:
        splink_worker(*args.splink_worker)
        return
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    args.cache.mkdir(parents=True, exist_ok=True)  # the warm-up's Prefect home lives in it
    if args.million and "1m" not in sizes:
        sizes.append("1m")
    with_splink = not args.no_splink and splink_available()
    if not args.no_splink and not with_splink:
        print("Splink is not installed (`.venv/bin/python -m pip install -c constraints.txt "
              "-e '.[compare]'`): Pathlink only")
    rows = []
    print(f"warm-up (empty workspace, migrates the benchmark's Prefect database): "
          f"{warm_up(args.cache):.1f} s", flush=True)
    if args.server:
        global PERSISTENT_API
        PERSISTENT_API = start_persistent_server(args.cache)
        print(f"runs use one Prefect server started beforehand ({PERSISTENT_API}), not timed",
              flush=True)
    else:
        print("each run starts Prefect's temporary server (timed: part of 'startup')",
              flush=True)
    for size in sizes:
        frame = month(size, args.cache)
        for attempt in range(args.repeat):
            load = os.getloadavg()
            base = Path(tempfile.mkdtemp(prefix=f"e2e-{size}-"))
            try:
                print(f"{size}: {len(frame):,} records, run {attempt + 1}, load average "
                      f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
                pl = run_pathlink(frame, base, args.cache)
                print(f"  pathlink run  {pl['wall']:7.1f} s  peak {pl['peak'] / 2**20:6.0f} MB"
                      f"  | {_stage_line(pl['stages'])}", flush=True)
                sp = None
                if with_splink:
                    sp = run_splink(args.cache / f"month-{size}.parquet", base)
                    print(f"  splink        {sp['wall']:7.1f} s  peak {sp['peak'] / 2**20:6.0f} MB"
                          f"  (linking {sp['seconds']:.1f} s)", flush=True)
                rows.append((size, len(frame), pl, sp, load[0]))
                if args.keep:
                    shutil.copytree(base, args.keep / f"{size}-{attempt + 1}",
                                    dirs_exist_ok=True)
            finally:
                shutil.rmtree(base, ignore_errors=True)
    checked = None
    if not args.no_check:
        source = next((s for s in ("100k", "1m", "10k") if s in sizes), sizes[-1])
        frame = month(source, args.cache)
        base = Path(tempfile.mkdtemp(prefix="e2e-check-"))
        try:
            load = os.getloadavg()
            checked = run_check(frame, base, args.cache)
            print(f"check: {checked['rows']:,} rows from the {source} month, load average "
                  f"{load[0]:.2f}: pathlink check {checked['wall']:.2f} s, peak "
                  f"{checked['peak'] / 2**20:.0f} MB", flush=True)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print("| month | records | pathlink run wall | peak RSS (tree) | splink wall | splink RSS "
          "| ratio | load | stages (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, n, pl, sp, load in rows:
        splink = (f"{sp['wall']:.1f} s | {sp['peak'] / 2**20:.0f} MB | "
                  f"{pl['wall'] / sp['wall']:.2f}x") if sp else "- | - | -"
        print(f"| {size} | {n:,} | {pl['wall']:.1f} s | {pl['peak'] / 2**20:.0f} MB | {splink} "
              f"| {load:.1f} | {_stage_line(pl['stages'])} |")
    if checked:
        print(f"\npathlink check, {checked['rows']:,}-row participants file: "
              f"{checked['wall']:.2f} s wall, peak {checked['peak'] / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
