"""Differentially private released figures (``[release] mode = "dp"``), from OpenDP.

Every count (numerators, denominators, partner-pair counts) is a noisy histogram from OpenDP's
Gaussian mechanism, and every median a private quantile (OpenDP's exponential mechanism over
$250 steps), under one zero-concentrated DP budget ``rho`` for the whole release:

* **Unit of privacy: the person.** Each person counts at most ``max_units_per_person`` times in
  a measure (exits, enrollments; further ones are left out before counting), so a histogram
  over groups that partition the units changes by at most that much in L2 when one person is
  added or removed; groups that overlap (barriers, service types, a person's partners in
  person-level measures, the partner-pair matrix) multiply it by the square root of the number
  of groups a person can be in.
* **Budget.** ``rho`` is split evenly over the release's queries: one histogram per measure
  component (denominator, numerator), dimension and period split, one per median dimension
  (its cells are disjoint, each gets the query's share divided by the cells one person can
  touch), one for the pair matrix. Populations shared by measures are counted once (the exit
  cohort is the denominator of both employment rates; those employed in Q2 are the numerator
  of one and the denominator of retention and the n of the median). OpenDP's ``map`` gives
  each query's privacy loss; their sum is checked against ``rho`` (zCDP composes by adding).
* **Post-processing** (free): counts rounded and clamped (0 <= numerator <= denominator);
  rates are noisy numerator / noisy denominator; a cell whose noisy n is under the small-cell
  threshold is marked ``small cell`` (its noise would dominate), using only noisy figures.

The group domains (partners, programs, sectors, funding streams, categories) are taken as
public: they come from the config, the program catalogue and the contracts' code lists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from pipelines.warehouse.measures import (
    ALL,
    MEASURES,
    MeasureSpec,
    coenrollment_pairs,
    compute_measures,
    unit_rows,
)

MEDIAN_STEP = 250.0
MEDIAN_UPPER = 40000.0
#: Earnings over a year (the earnings change's four quarters) are clipped at four quarters'
#: upper bound; a change at plus or minus that.
YEAR_UPPER = 4 * MEDIAN_UPPER
#: Median measure -> (the population its n is, the candidates' lower and upper bound).
MEDIANS: dict[str, tuple[str, float, float]] = {
    "median_earnings_q2": ("employed_q2", 0.0, MEDIAN_UPPER),
    "earnings_change_median": ("earnings_cohort", -YEAR_UPPER, YEAR_UPPER),
    "earnings_before_median": ("earnings_cohort", 0.0, YEAR_UPPER),
    "earnings_after_median": ("earnings_cohort", 0.0, YEAR_UPPER),
}
#: Measure -> (denominator population, numerator population): measures that share a
#: population share its noisy histogram.
POPULATIONS: dict[str, tuple[str, str | None]] = {
    "employment_q2": ("exit_cohort", "employed_q2"),
    "employment_q4": ("exit_cohort", "employed_q4"),
    "retention_q2_q4": ("employed_q2", "retained"),
    "credential_attainment": ("training_cohort", "credential"),
    "measurable_skill_gains": ("training_enrollments", "skill_gain"),
    "supportive_services": ("enrollments", "supportive"),
    "co_enrollment": ("persons_enrolled", "co_enrolled"),
    "earnings_higher_share": ("earnings_cohort", "earnings_higher"),
    # the counts behind cost per outcome (pipelines.warehouse.roi), in the same budget
    "roi_participants": ("roi_participants", None),
    "roi_completers": ("roi_completers", None),
    "roi_credentials": ("roi_completers", "roi_credentials"),
    "roi_employed_q2": ("roi_completers", "roi_employed_q2"),
}
OVERLAPPING = {"barrier"}


def _opendp():
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


@dataclass
class Budget:
    """The queries of one release and the privacy loss OpenDP reports for each."""

    rho: float
    queries: int
    spent: float = 0.0

    @property
    def share(self) -> float:
        return self.rho / self.queries

    def charge(self, loss: float) -> None:
        self.spent += loss
        if self.spent > self.rho * (1 + 1e-9):
            raise RuntimeError(f"privacy budget exceeded: spent {self.spent} of rho {self.rho}")


def _bounded(rows: pd.DataFrame, max_units: int) -> pd.DataFrame:
    """Keep at most ``max_units`` units per person (the first by unit key)."""
    units = rows[["person_id", "unit_key"]].drop_duplicates().sort_values(
        ["person_id", "unit_key"])
    kept = units.groupby("person_id").head(max_units)["unit_key"]
    return rows[rows["unit_key"].isin(set(kept))]


def _noisy_counts(counts: np.ndarray, sensitivity: float, budget: Budget) -> np.ndarray:
    """Gaussian noise from OpenDP on a histogram with L2 sensitivity ``sensitivity``."""
    dp = _opendp()
    scale = sensitivity / math.sqrt(2 * budget.share)
    space = (dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l2_distance(T=float))
    meas = dp.m.make_gaussian(*space, scale=scale)
    budget.charge(meas.map(float(sensitivity)))
    return np.asarray(meas([float(c) for c in counts]), dtype=float)


def noise_scale(sensitivity: float, budget: Budget) -> float:
    """Standard deviation of the noise of one histogram."""
    return sensitivity / math.sqrt(2 * budget.share)


def _median_measurement(d_in: int, rho_cell: float, lower: float = 0.0,
                        upper: float = MEDIAN_UPPER):
    """OpenDP's private median over $250 steps from ``lower`` to ``upper``, its scale searched
    so that one person (``d_in`` rows) costs at most ``rho_cell``."""
    dp = _opendp()
    candidates = [float(x) for x in np.arange(lower, upper + MEDIAN_STEP, MEDIAN_STEP)]
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))

    def make(scale: float):
        return dp.m.make_private_quantile(domain, dp.symmetric_distance(),
                                          dp.zero_concentrated_divergence(),
                                          candidates=candidates, alpha=0.5, scale=scale)

    measurement = make(dp.binary_search_param(make, d_in=d_in, d_out=rho_cell))
    if measurement.map(d_in) > rho_cell * (1 + 1e-9):
        raise RuntimeError("private median over its budget")
    return measurement


def dp_measures(con: duckdb.DuckDBPyConnection, *, rho: float, max_units: int,
                threshold: int, specs: Mapping[str, MeasureSpec] = MEASURES
                ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Noisy measures and pair counts over the analyst warehouse (every measure of ``specs``
    under the one budget).

    Returns:
        (tidy frame like :func:`compute_measures` with noisy numerator, denominator and value,
        plus ``suppression`` = ``primary`` where the noisy n is under ``threshold``; the pair
        counts; the settings for ``released_disclosure_rules``).
    """
    exact = compute_measures(con, specs=specs)  # the cells (group domains); figures replaced
    cells = exact[["measure", "dimension", "group", "period"]].copy()
    rates = [m for m in specs if m in POPULATIONS]
    dims = {m: sorted(set(exact.loc[exact["measure"] == m, "dimension"])) for m in specs}
    # --- the queries --------------------------------------------------------------------
    populations: dict[tuple[str, str, bool], tuple[str, str]] = {}  # (pop, dim, by_period)
    for measure in rates:
        den, num = POPULATIONS[measure]
        for dim in dims[measure]:
            for by_period in ((False, True) if specs[measure].by_period
                              and dim == "overall" else (False,)):
                populations.setdefault((den, dim, by_period), (measure, "den"))
                if num is not None:
                    populations.setdefault((num, dim, by_period), (measure, "num"))
    median_blocks = [(measure, dim, by_period) for measure in specs if measure in MEDIANS
                     for dim in dims[measure]
                     for by_period in ((False, True) if dim == "overall"
                                       and specs[measure].by_period else (False,))]
    service_types = "services_by_type" in dims
    queries = len(populations) + len(median_blocks) + 1 + (2 if service_types else 0)
    budget = Budget(rho=rho, queries=queries)
    noisy: dict[tuple[str, str, str, str], float] = {}  # (population, dim, group, period)
    # --- rate histograms ------------------------------------------------------------------
    units_cache: dict[str, pd.DataFrame] = {}
    for (population, dim, by_period), (measure, part) in populations.items():
        spec = specs[measure]
        if measure not in units_cache:
            rows = unit_rows(con, measure, specs=specs)
            units_cache[measure] = rows if spec.unit == "person" else _bounded(rows, max_units)
        rows = units_cache[measure]
        rows = rows[rows["dimension"] == dim]
        if part == "num":
            rows = rows[rows["num"].fillna(False).astype(bool)]
        key = rows["period"].fillna(ALL) if by_period else pd.Series(ALL, index=rows.index)
        groups = exact[(exact["measure"] == measure) & (exact["dimension"] == dim)]
        groups = groups[groups["period"] != ALL] if by_period else groups[groups["period"] == ALL]
        domain = list(zip(groups["group"], groups["period"], strict=True))
        if spec.unit == "person":
            counts = rows.assign(k=key).groupby(["group", "k"])["person_id"].nunique()
            per_person = 1.0
        else:
            counts = rows.assign(k=key).groupby(["group", "k"]).size()
            per_person = float(max_units)
        overlap = dim in OVERLAPPING or (spec.unit == "person" and dim not in (
            "overall", "race_ethnicity", "sex", "age_band"))
        sensitivity = per_person * (math.sqrt(max(1, len(set(groups["group"]))))
                                    if overlap else 1.0)
        values = np.array([counts.get((g, p), 0) for g, p in domain], dtype=float)
        for (g, p), v in zip(domain, _noisy_counts(values, sensitivity, budget), strict=True):
            noisy[(population, dim, g, p)] = v
    # --- services by type: denominator enrollments (overall), numerator per type ----------
    if service_types:
        enrollments = _bounded(unit_rows(con, "supportive_services", ("overall",)), max_units)
        types = con.execute("SELECT ep.enrollment_key, s.service_type FROM enrollment_service "
                            "AS s JOIN enrollment_episode AS ep USING (enrollment_key)").df()
        types = types[types["enrollment_key"].isin(set(enrollments["unit_key"]))]
        groups = exact[exact["measure"] == "services_by_type"]["group"].tolist()
        den = _noisy_counts(np.array([len(enrollments)], dtype=float), float(max_units),
                            budget)[0]
        counts = types.groupby("service_type")["enrollment_key"].nunique()
        num = _noisy_counts(np.array([counts.get(g, 0) for g in groups], dtype=float),
                            max_units * math.sqrt(max(1, len(groups))), budget)
        for g, v in zip(groups, num, strict=True):
            noisy[("service_type", "service_type", g, ALL)] = v
        noisy[("enrollments_all", "service_type", ALL, ALL)] = den
    # --- medians --------------------------------------------------------------------------
    medians: dict[tuple[str, str, str, str], float] = {}
    median_rows: dict[str, pd.DataFrame] = {}
    for measure, dim, by_period in median_blocks:
        if measure not in median_rows:
            rows = _bounded(unit_rows(con, measure, specs=specs), max_units)
            median_rows[measure] = rows[rows["val"].notna()]
        _population, lower, upper = MEDIANS[measure]
        rows = median_rows[measure]
        sub = rows[rows["dimension"] == dim]
        key = sub["period"].fillna(ALL) if by_period else pd.Series(ALL, index=sub.index)
        groups = exact[(exact["measure"] == measure) & (exact["dimension"] == dim)]
        groups = groups[groups["period"] != ALL] if by_period else groups[groups["period"] == ALL]
        touched = max_units * (len(set(groups["group"])) if dim in OVERLAPPING else 1)
        touched = max(1, min(touched, len(groups)))
        measurement = _median_measurement(max_units, budget.share / touched, lower, upper)
        budget.charge(budget.share)  # disjoint cells: one person touches at most `touched`
        values = sub.assign(k=key).groupby(["group", "k"])["val"].apply(list)
        for g, p in zip(groups["group"], groups["period"], strict=True):
            medians[(measure, dim, g, p)] = float(measurement(
                [min(max(float(v), lower), upper) for v in values.get((g, p), [])]))
    # --- pairs ----------------------------------------------------------------------------
    pairs = coenrollment_pairs(con)
    partners = sorted(set(pairs["partner_a"]) | set(pairs["partner_b"]))
    pair_sensitivity = math.sqrt(len(partners) * (len(partners) + 1) / 2)
    pairs["persons"] = np.maximum(0, np.round(_noisy_counts(
        pairs["persons"].to_numpy(dtype=float), pair_sensitivity, budget))).astype(int)
    # --- assemble -------------------------------------------------------------------------
    out = []
    for row in cells.itertuples(index=False):
        measure, dim, group, period = row.measure, row.dimension, row.group, row.period
        record = {"measure": measure, "dimension": dim, "group": group, "period": period,
                  "numerator": None, "denominator": None, "value": None,
                  "fuzzy_value": None}
        if measure in MEDIANS:
            n = noisy.get((MEDIANS[measure][0], dim, group, period))
            record["denominator"] = n
            record["fuzzy_value"] = medians.get((measure, dim, group, period))
        elif measure == "services_by_type":
            record["numerator"] = noisy.get(("service_type", "service_type", group, ALL))
            record["denominator"] = noisy.get(("enrollments_all", "service_type", ALL, ALL))
        else:
            den, num = POPULATIONS[measure]
            record["denominator"] = noisy.get((den, dim, group, period))
            if num is not None:
                record["numerator"] = noisy.get((num, dim, group, period))
        out.append(record)
    frame = pd.DataFrame(out, columns=["measure", "dimension", "group", "period", "numerator",
                                       "denominator", "value", "fuzzy_value"])
    den = np.maximum(0, np.round(frame["denominator"].astype(float).fillna(0)))
    num = np.clip(np.round(frame["numerator"].astype(float).fillna(0)), 0, den)
    kind = frame["measure"].map(lambda m: specs[m].kind)
    frame["denominator"] = pd.array(den.astype("int64"), dtype="Int64")
    frame["numerator"] = pd.Series(pd.array(num.astype("int64"), dtype="Int64"),
                                   index=frame.index).where(kind == "rate", pd.NA)
    frame["value"] = (num / den.replace(0, np.nan)).where(kind == "rate",
                                                          den.where(kind == "count"))
    frame["suppression"] = np.where(den < threshold, "primary", None)
    base_sd = noise_scale(float(max_units), budget)
    settings = {
        "mode": "dp", "dp_library": f"opendp {_opendp_version()}",
        "rho": f"{rho:g}", "queries": str(queries),
        "noise_sd": f"{base_sd:.1f}",
        "noise_median_abs": f"{base_sd * 0.6745:.1f}",
        "max_units_per_person": str(max_units),
        "median_upper": f"${MEDIAN_UPPER:,.0f}",
        "rho_spent": f"{budget.spent:.6g}",
    }
    if any(m in specs for m in MEDIANS if m != "median_earnings_q2"):
        settings["earnings_change_bounds"] = (
            f"change clipped to -${YEAR_UPPER:,.0f}..${YEAR_UPPER:,.0f}, before and after to "
            f"$0..${YEAR_UPPER:,.0f}")
    return frame, pairs, settings


def _opendp_version() -> str:
    from importlib.metadata import version

    return version("opendp")


def epsilon_at(rho: float, delta: float) -> float:
    """The (epsilon, delta)-DP guarantee of rho-zCDP, from OpenDP's conversion."""
    dp = _opendp()
    gaussian = dp.m.make_gaussian(dp.atom_domain(T=float, nan=False),
                                  dp.absolute_distance(T=float), scale=1 / math.sqrt(2 * rho))
    return float(dp.c.make_zCDP_to_approxDP(gaussian).map(1.0).epsilon(delta))


def released_frame(tidy: pd.DataFrame, no_data: Mapping | set) -> pd.DataFrame:
    """Mark "no data sent" cells in a noisy tidy frame (before display formatting)."""
    keys = zip(tidy["measure"], zip(tidy["dimension"], tidy["group"], tidy["period"],
                                    strict=True), strict=True)
    missing = [k in no_data for k in keys]
    return tidy.assign(suppression=np.where(missing, "no_data", tidy["suppression"]))
