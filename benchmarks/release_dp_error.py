"""Error of the differentially private release against the exact figures, and what
suppression publishes instead, on a workspace's analyst warehouse (e.g. the demo's).

For each of --runs fresh DP releases (OpenDP's noise is not seeded) at the workspace's (or
--rho's) budget: the median absolute error of the published rates against the exact rates in
percentage points, overall and by the exact denominator's size; the median earnings' error in
dollars; how many cells each mode publishes. Optionally writes the last DP release as a
published file and its report (--report DIR).

    .venv/bin/python benchmarks/release_dp_error.py --workspace demo-workspace --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipelines.warehouse import disclosure, measures, tiers
from pipelines.warehouse.report import write_report
from pipelines.workspace import load_workspace

BANDS = [(0, 50), (50, 200), (200, 1000), (1000, 10**9)]


def compare(released: pd.DataFrame, exact: pd.DataFrame) -> pd.DataFrame:
    merged = released.merge(exact, on=["measure", "dimension", "group", "period"],
                            suffixes=("", "_exact"))
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", type=Path, default=Path("demo-workspace"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rho", type=float, default=None)
    parser.add_argument("--report", type=Path, default=None,
                        help="write the last DP release and its report.html here")
    args = parser.parse_args()
    ws = load_workspace(args.workspace)
    rho = args.rho or ws.release.rho
    scratch = Path(tempfile.mkdtemp(prefix="dp-error-"))
    try:
        copy = scratch / "warehouse.duckdb"
        shutil.copy(ws.warehouse_db, copy)
        con = duckdb.connect(str(copy))
        sent = con.execute("SELECT * FROM released_data_sent").df()
        exact = measures.compute_measures(con)
        suppressed = disclosure.released_tables(
            con, threshold=ws.small_cell_threshold, datasets_sent=sent)["released_measures"]
        rows = []
        tables = {}
        for _ in range(args.runs):
            tables = disclosure.released_tables(
                con, threshold=ws.small_cell_threshold, datasets_sent=sent, mode="dp",
                rho=rho, delta=ws.release.delta,
                max_units_per_person=ws.release.max_units_per_person)
            merged = compare(tables["released_measures"], exact)
            rates = merged[(merged["measure"] != "median_earnings_q2") & ~merged["suppressed"]
                           & merged["value_exact"].notna()]
            for r in rates.itertuples(index=False):
                shown = r.value if not pd.isna(r.value) else (
                    0.0 if r.display == "<1%" else 1.0)
                rows.append(("rate", int(r.denominator_exact), abs(float(shown)
                                                                   - r.value_exact)))
            medians = merged[(merged["measure"] == "median_earnings_q2") & ~merged["suppressed"]
                             & merged["value_exact"].notna()]
            for r in medians.itertuples(index=False):
                rows.append(("median", int(r.denominator_exact),
                             abs(float(r.value) - r.value_exact)))
        errors = pd.DataFrame(rows, columns=["kind", "n", "error"])
        rules = dict(zip(tables["released_disclosure_rules"]["rule"],
                         tables["released_disclosure_rules"]["setting"], strict=True))
        print(f"workspace {args.workspace}; rho = {rho:g} (epsilon {rules['epsilon']} at "
              f"delta {rules['delta']}), {rules['queries']} queries, noise sd of a count "
              f"{rules['noise_sd']} (x sqrt(groups) for overlapping groups); {args.runs} runs; "
              f"load {os.getloadavg()[0]:.1f}")
        rates = errors[errors["kind"] == "rate"]
        print(f"DP rates published: {len(rates) // args.runs} per run; median absolute error "
              f"{100 * rates['error'].median():.1f} percentage points "
              f"(90th percentile {100 * rates['error'].quantile(0.9):.1f})")
        for low, high in BANDS:
            band = rates[(rates["n"] >= low) & (rates["n"] < high)]
            if len(band):
                print(f"  exact n {low}-{high if high < 10**9 else 'max'}: {len(band)} cells, "
                      f"median abs error {100 * band['error'].median():.1f} pp")
        med = errors[errors["kind"] == "median"]
        if len(med):
            print(f"DP median earnings: median absolute error ${med['error'].median():,.0f}")
        shown = ~suppressed["suppressed"]
        print(f"suppression mode: {int(shown.sum())} of {len(suppressed)} cells published "
              f"(exact, rates to whole percents), {int((~shown).sum())} suppressed; "
              f"DP mode: {int((~tables['released_measures']['suppressed']).sum())} of "
              f"{len(tables['released_measures'])} published")
        if args.report:
            args.report.mkdir(parents=True, exist_ok=True)
            disclosure.write_released(con, tables)
            con.execute("UPDATE release SET release_mode = 'dp'")
            con.execute("CHECKPOINT")
            con.close()
            target = args.report / "pathlink.duckdb"
            tiers.write_published(copy, target, "dp-benchmark")
            write_report(target, args.report / "report.html")
            print(f"DP release and report: {args.report}")
        else:
            con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
